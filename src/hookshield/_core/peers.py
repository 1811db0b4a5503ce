"""IP allow-lists: which address a delivery came from, and whether it may come from there.

Theory of operation, the rules of this module: nothing here logs, awaits or does I/O;
it takes the peer address the server reports and the request's headers, and either
returns or raises :class:`~hookshield.ForbiddenSource` (403).

* The options are parsed once, at construction, and every bad value is refused then.
* The peer is the address of the TCP connection, which nobody can forge.  A header
  that names another address (``X-Forwarded-For``, RFC 7239 ``Forwarded``) is
  believed only when the peer is one of ``trusted_proxies``: anyone else can write
  anything in it.
* Each proxy appends the address it received the request from, so the chain is read
  from the right: starting at the peer, while the current hop is a trusted proxy, the
  next address to its left is taken.  The first address that is not a trusted proxy is
  the client.  Everything left of it was written by the client and is never read, so
  a spoofed left-most entry decides nothing.
* What a trusted proxy wrote must be exact: a header over :data:`MAX_FORWARDED_SIZE`,
  an entry that is not an address (``unknown``, an obfuscated name, garbage) where the
  walk reaches it, a ``Forwarded`` header that breaks RFC 7239's grammar, or the two
  headers naming different clients, refuse the delivery (fail closed).
* An IPv4-mapped IPv6 address (``::ffff:52.52.52.52``, as a dual-stack socket reports
  an IPv4 peer) is its IPv4 address, in the options and in requests alike.
* A refusal names the client address only once it parsed as one (so at most 45
  characters), never the header's text.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from .errors import ForbiddenSource
from .headers import Headers, HeadersLike

__all__ = ["MAX_FORWARDED_SIZE", "AddressesLike", "PeerPolicy"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: One address or range (``"52.52.52.52"``, ``"2001:db8::/32"``, an ``ipaddress``
#: object), or a sequence of them.
AddressesLike = str | Address | Network | Iterable[str | Address | Network]

#: The largest ``X-Forwarded-For`` or ``Forwarded`` value read from a trusted proxy.
MAX_FORWARDED_SIZE: Final = 8 * 1024

_MAPPED: Final = ipaddress.IPv6Network("::ffff:0:0/96")
_ANY_IPV4: Final = ipaddress.IPv4Network("0.0.0.0/0")

# RFC 7239 section 4: forwarded-pair = token "=" value; value = token / quoted-string
# (RFC 9110 section 5.6.2 and 5.6.4).  Optional whitespace around ";" and "," is
# tolerated, as proxies write "for=a; proto=https".
_TCHARS: Final = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED: Final = r'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_PAIR: Final = re.compile(rf"[ \t]*({_TCHARS})=({_TCHARS}|{_QUOTED})[ \t]*")
# RFC 7239 section 6: node = nodename [ ":" node-port ]; an IPv6 nodename is bracketed.
_BRACKETED: Final = re.compile(r"\[([0-9A-Fa-f:.]+)\](?::([0-9]{1,5}|_[0-9A-Za-z._-]+))?")
_IPV4_PORT: Final = re.compile(r"([0-9.]+)(?::([0-9]{1,5}|_[0-9A-Za-z._-]+))?")


@dataclass(frozen=True, slots=True)
class PeerPolicy:
    """The address ranges deliveries may come from, and the proxies believed about it."""

    allowed: tuple[Network, ...]
    trusted: tuple[Network, ...] = ()

    @classmethod
    def build(
        cls, allowed_ips: AddressesLike | None, trusted_proxies: AddressesLike | None
    ) -> PeerPolicy | None:
        """The policy of a handler's options; ``None`` when there is no allow-list."""
        # Parsed before the two are judged together, so a wrong type is named first.
        trusted = () if trusted_proxies is None else networks(trusted_proxies, "trusted_proxies")
        if allowed_ips is None:
            if trusted_proxies is not None:
                raise ValueError(
                    "trusted_proxies only says whose X-Forwarded-For to believe for "
                    "allowed_ips: pass allowed_ips=... as well"
                )
            return None
        return cls(networks(allowed_ips, "allowed_ips"), trusted)

    def check(self, peer: str | None, headers: HeadersLike) -> None:
        """Raise :class:`~hookshield.ForbiddenSource` unless the client is allowed."""
        address = peer_address(peer)
        if address is None:
            raise ForbiddenSource(
                "the server gave no IP address for the peer (a unix socket?), and this "
                "handler accepts deliveries from listed addresses only (allowed_ips)"
            )
        client = self.client(address, headers)
        if not _within(client, self.allowed):
            raise ForbiddenSource(f"deliveries from {client} are not accepted (allowed_ips)")

    def client(self, peer: Address, headers: HeadersLike) -> Address:
        """The client's address: the right-most in the chain that is not a trusted proxy."""
        if not self.trusted or not _within(peer, self.trusted):
            return peer
        checked = headers if isinstance(headers, Headers) else Headers(headers)
        answers: list[Address] = []
        forwarded_for = checked.get("x-forwarded-for")
        if forwarded_for is not None:
            _bound(forwarded_for, "X-Forwarded-For")
            answers.append(self._walk(peer, reversed(forwarded_for.split(",")), "X-Forwarded-For"))
        forwarded = checked.get("forwarded")
        if forwarded is not None:
            _bound(forwarded, "Forwarded")
            answers.append(self._walk(peer, reversed(forwarded_for_values(forwarded)), "Forwarded"))
        if len(answers) == 2 and answers[0] != answers[1]:
            # Proxies usually write one of the two and pass the other on as the client
            # sent it; believing either could believe the client.
            raise ForbiddenSource(
                "the X-Forwarded-For and Forwarded headers from a trusted proxy name "
                "different clients"
            )
        return answers[0] if answers else peer

    def _walk(self, peer: Address, hops: Iterator[str | None], header: str) -> Address:
        client = peer
        for hop in hops:
            if not _within(client, self.trusted):
                break
            address = None if hop is None else node_address(hop)
            if address is None:
                raise ForbiddenSource(
                    f"the {header} header from a trusted proxy has an entry that is "
                    "not an IP address"
                )
            client = address
        return client

    def describe(self) -> list[str]:
        """How many ranges each option holds, for a repr."""
        parts = [f"allowed_ips={len(self.allowed)}"]
        if self.trusted:
            parts.append(f"trusted_proxies={len(self.trusted)}")
        return parts


def networks(value: AddressesLike, option: str) -> tuple[Network, ...]:
    """Parse one address or range, or a sequence of them; refuse anything else."""
    items: Iterable[object]
    if isinstance(value, (str, *_OBJECTS)):
        items = (value,)
    elif isinstance(value, (bytes, bytearray, memoryview)) or not isinstance(value, Iterable):
        raise TypeError(
            f"{option} takes IP addresses and ranges as strings or ipaddress objects, "
            f"one or a sequence of them, not {type(value).__name__}"
        )
    else:
        items = list(value)
        if not items:
            raise ValueError(
                f"{option} is empty, which would refuse every delivery; pass None for none"
            )
    parsed: list[Network] = []
    for item in items:
        parsed += _network(item, option)
    return tuple(dict.fromkeys(parsed))


_OBJECTS: Final = (
    ipaddress.IPv4Address,
    ipaddress.IPv6Address,
    ipaddress.IPv4Network,
    ipaddress.IPv6Network,
)


def _network(item: object, option: str) -> list[Network]:
    if isinstance(item, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        network: Network = ipaddress.ip_network(_normal(item))
    elif isinstance(item, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        network = item
    elif isinstance(item, str):
        network = _parse_network(item.strip(), option)
    else:
        raise TypeError(
            f"{option} takes IP addresses and ranges as strings or ipaddress objects, "
            f"not {type(item).__name__}"
        )
    if isinstance(network, ipaddress.IPv6Network) and network.overlaps(_MAPPED):
        if network.subnet_of(_MAPPED):
            # ::ffff:52.52.52.0/120 is 52.52.52.0/24, as the peers it matches are compared.
            low = int(network.network_address) & 0xFFFFFFFF
            return [ipaddress.IPv4Network((low, network.prefixlen - 96))]
        return [network, _ANY_IPV4]  # a range around all of them (::/0) holds all of IPv4
    return [network]


def _parse_network(text: str, option: str) -> Network:
    # The value is quoted at most 64 characters long: it may come from anywhere.
    try:
        return ipaddress.ip_network(text)
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"{option}: {text[:64]!r} is not an IP address or range") from None
    raise ValueError(
        f"{option}: {text[:64]!r} has bits set after its prefix; the range is {loose}"
    ) from None


def peer_address(peer: str | None) -> Address | None:
    """The peer address as the server reports it, or ``None`` if there is none."""
    if not peer:
        return None
    try:
        return _normal(ipaddress.ip_address(peer))
    except ValueError:
        return None


def node_address(node: str) -> Address | None:
    """The address of an ``X-Forwarded-For`` entry or a ``Forwarded`` ``for=`` node.

    ``192.0.2.1``, ``192.0.2.1:443``, ``2001:db8::1``, ``[2001:db8::1]`` and
    ``[2001:db8::1]:443``; ``None`` for anything else (``unknown``, ``_hidden``).
    """
    node = node.strip(" \t")
    match = _BRACKETED.fullmatch(node) or _IPV4_PORT.fullmatch(node)
    text = node if match is None else match[1]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # A bracket holds an IPv6 address only, and an IPv6 address has no port unbracketed.
    if match is not None and (node[0] == "[") != (address.version == 6):
        return None
    return _normal(address)


def forwarded_for_values(value: str) -> list[str | None]:
    """The ``for=`` node of each element of a ``Forwarded`` value, left to right.

    ``None`` stands for an element without one; a value that breaks RFC 7239's
    grammar (section 4), or repeats a parameter in one element, is refused.
    """
    elements: list[str | None] = []
    element: dict[str, str] = {}
    position = 0
    while True:
        pair = _PAIR.match(value, position)
        if pair is None:
            raise _malformed("Forwarded")
        name = pair[1].lower()
        if name in element:
            raise _malformed("Forwarded")
        raw = pair[2]
        element[name] = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw[0] == '"' else raw
        position = pair.end()
        if position == len(value) or value[position] == ",":
            elements.append(element.get("for"))
            element = {}
            if position == len(value):
                return elements
        elif value[position] != ";":
            raise _malformed("Forwarded")
        position += 1


def _bound(value: str, header: str) -> None:
    if len(value) > MAX_FORWARDED_SIZE:
        raise ForbiddenSource(
            f"the {header} header from a trusted proxy is over {MAX_FORWARDED_SIZE} characters"
        )


def _malformed(header: str) -> ForbiddenSource:
    return ForbiddenSource(f"the {header} header from a trusted proxy is malformed")


def _normal(address: Address) -> Address:
    """An IPv4-mapped IPv6 address as IPv4; an IPv6 zone (``%eth0``) dropped."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            return mapped
        if address.scope_id is not None:
            return ipaddress.IPv6Address(int(address))
    return address


def _within(address: Address, ranges: tuple[Network, ...]) -> bool:
    # An address is never in a range of the other version (ipaddress answers False).
    return any(address in network for network in ranges)
