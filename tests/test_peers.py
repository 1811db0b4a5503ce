"""IP allow-lists (``_peers.py``): options, the client address behind proxies, refusals."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from hookshield import MINDPEEKER_IPS, ForbiddenSource, WebhookError, WebhookHandler
from hookshield._core.peers import MAX_FORWARDED_SIZE, Address, PeerPolicy

SEEDS = Path("/work/shared/seeds")


def handler(allowed: object = None, trusted: object = None) -> WebhookHandler:
    return WebhookHandler(
        "mindpeeker",
        secret="whsec_peers",
        allowed_ips=allowed,  # type: ignore[arg-type]
        trusted_proxies=trusted,  # type: ignore[arg-type]
    )


def refusal(
    hook: WebhookHandler, peer: str | None, headers: dict[str, str] | None = None
) -> str | None:
    """The reason ``hook`` refuses the peer with, or ``None`` when it accepts it."""
    try:
        hook.check_peer(peer, headers or {})
    except ForbiddenSource as error:
        assert error.status == 403
        return str(error)
    return None


# -- the options ----------------------------------------------------------------------


def test_without_an_allow_list_every_peer_is_accepted() -> None:
    hook = handler()
    assert "allowed_ips" not in repr(hook)
    for peer in ("203.0.113.9", "2001:db8::1", None, "", "not an address"):
        assert refusal(hook, peer, {"X-Forwarded-For": "garbage"}) is None


@pytest.mark.parametrize(
    "allowed",
    [
        "52.52.52.52",
        ipaddress.ip_address("52.52.52.52"),
        ipaddress.ip_network("52.52.52.0/24"),
        ["198.51.100.0/24", "52.52.52.52"],
        ("52.52.52.52",),
        {"52.52.52.52", "2001:db8::/32"},
        (address for address in ["52.52.52.52"]),
        " 52.52.52.52 ",
    ],
    ids=["str", "address", "network", "list", "tuple", "set", "generator", "spaces"],
)
def test_allowed_ips_takes_one_or_many_strings_or_ipaddress_objects(allowed: object) -> None:
    hook = handler(allowed)
    assert refusal(hook, "52.52.52.52") is None
    assert refusal(hook, "52.52.53.52") is not None


@pytest.mark.parametrize(
    ("allowed", "error", "says"),
    [
        ([], ValueError, "allowed_ips is empty"),
        ((), ValueError, "allowed_ips is empty"),
        ("52.52.52", ValueError, "'52.52.52' is not an IP address or range"),
        ("", ValueError, "is not an IP address or range"),
        ("52.52.52.52/33", ValueError, "is not an IP address or range"),
        ("52.52.52.1/24", ValueError, "the range is 52.52.52.0/24"),
        ("2001:db8::1/32", ValueError, "the range is 2001:db8::/32"),
        (["52.52.52.52", None], TypeError, "not NoneType"),
        (["52.52.52.52", 5], TypeError, "not int"),
        (875836468, TypeError, "not int"),
        (b"52.52.52.52", TypeError, "not bytes"),
        (True, TypeError, "not bool"),
    ],
)
def test_a_bad_allowed_ips_is_refused_at_construction(
    allowed: object, error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match="allowed_ips") as raised:
        handler(allowed)
    assert says in str(raised.value)


def test_a_bad_value_is_quoted_only_in_part() -> None:
    with pytest.raises(ValueError, match="allowed_ips") as raised:
        handler(["52.52.52.52", "x" * 100_000])
    assert len(str(raised.value)) < 200


def test_bad_trusted_proxies_are_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="trusted_proxies is empty"):
        handler("52.52.52.52", [])
    with pytest.raises(ValueError, match="trusted_proxies: 'proxy' is not"):
        handler("52.52.52.52", "proxy")
    with pytest.raises(TypeError, match="trusted_proxies"):
        handler("52.52.52.52", 10)


def test_trusted_proxies_without_an_allow_list_is_a_mistake() -> None:
    with pytest.raises(ValueError, match="pass allowed_ips"):
        handler(None, "10.0.0.0/8")


def test_the_repr_counts_the_ranges_without_listing_them() -> None:
    text = repr(handler(MINDPEEKER_IPS, ["10.0.0.0/8"]))
    assert "allowed_ips=2" in text and "trusted_proxies=1" in text
    assert "52.52" not in text
    assert "allowed_ips" not in repr(handler())
    assert "trusted_proxies" not in repr(handler("52.52.52.52"))


def test_mindpeeker_ips_are_the_addresses_its_page_publishes() -> None:
    # The MindPeeker webhook page: "whitelist MindPeeker's webhook IP addresses".
    page = next(SEEDS.glob("003_*.txt"), None)
    if page is not None:
        text = page.read_text(encoding="utf-8")
        assert all(f"\n{address}\n" in text for address in MINDPEEKER_IPS)
    assert MINDPEEKER_IPS == ("52.52.52.52", "52.53.53.53")
    hook = handler(MINDPEEKER_IPS)
    assert refusal(hook, "52.52.52.52") is None
    assert refusal(hook, "52.53.53.53") is None
    assert (
        refusal(hook, "52.54.54.54") == "deliveries from 52.54.54.54 are not accepted (allowed_ips)"
    )


def test_a_refusal_is_a_webhook_error_with_status_403() -> None:
    assert issubclass(ForbiddenSource, WebhookError)
    assert ForbiddenSource("x").status == 403


# -- the peer itself --------------------------------------------------------------------


def test_ipv4_and_ipv6_ranges() -> None:
    hook = handler(["198.51.100.0/24", "2001:db8:abcd::/48"])
    assert refusal(hook, "198.51.100.200") is None
    assert refusal(hook, "198.51.101.1") is not None
    assert refusal(hook, "2001:db8:abcd:12::7") is None
    assert refusal(hook, "2001:DB8:ABCD::1") is None
    assert refusal(hook, "2001:db8:abce::1") is not None


def test_an_ipv4_mapped_peer_matches_its_ipv4_form() -> None:
    assert refusal(handler("52.52.52.52"), "::ffff:52.52.52.52") is None
    assert refusal(handler("52.52.52.0/24"), "::ffff:34.52.52.52") is not None
    assert refusal(handler("::ffff:52.52.52.0/120"), "52.52.52.9") is None
    assert refusal(handler("::ffff:52.52.52.52"), "52.52.52.52") is None
    assert refusal(handler(ipaddress.ip_address("::ffff:52.52.52.52")), "52.52.52.52") is None
    # A range around all the mapped addresses holds all of IPv4, as it holds them.
    assert refusal(handler("::/0"), "52.52.52.52") is None
    assert refusal(handler("::/0"), "::ffff:52.52.52.52") is None
    assert refusal(handler("2001:db8::/32"), "::ffff:52.52.52.52") is not None


def test_an_ipv6_zone_is_ignored() -> None:
    assert refusal(handler("fe80::/10"), "fe80::1%eth0") is None


@pytest.mark.parametrize("peer", [None, "", "unix:/run/app.sock", "52.52.52.52:443"])
def test_no_usable_peer_address_is_refused(peer: str | None) -> None:
    reason = refusal(handler("0.0.0.0/0"), peer)
    assert reason is not None and "no IP address for the peer" in reason


# -- forwarding headers ------------------------------------------------------------------

PROXIES = ["10.0.0.0/8", "2001:db8:ffff::/48"]


def test_the_headers_of_an_untrusted_peer_are_ignored() -> None:
    hook = handler("52.52.52.52", PROXIES)
    # A client that claims an allowed address is still itself.
    spoofed = {"X-Forwarded-For": "52.52.52.52", "Forwarded": "for=52.52.52.52"}
    assert refusal(hook, "203.0.113.7", spoofed) == (
        "deliveries from 203.0.113.7 are not accepted (allowed_ips)"
    )
    # And what an untrusted peer sends is not even read, however malformed.
    junk = {"X-Forwarded-For": "unknown, <script>" * MAX_FORWARDED_SIZE, "Forwarded": 'for="'}
    assert refusal(hook, "52.52.52.52", junk) is None
    # Without trusted proxies, nobody's headers are read.
    assert refusal(handler("52.52.52.52"), "10.0.0.1", {"X-Forwarded-For": "52.52.52.52"}) == (
        "deliveries from 10.0.0.1 are not accepted (allowed_ips)"
    )


def test_a_trusted_proxy_says_who_the_client_is() -> None:
    hook = handler("52.52.52.52", PROXIES)
    assert refusal(hook, "10.1.2.3", {"X-Forwarded-For": "52.52.52.52"}) is None
    assert refusal(hook, "10.1.2.3", {"X-Forwarded-For": "203.0.113.7"}) == (
        "deliveries from 203.0.113.7 are not accepted (allowed_ips)"
    )
    # Then the proxy is not the client: a request made by the proxy itself names none.
    assert refusal(hook, "10.1.2.3") == "deliveries from 10.1.2.3 are not accepted (allowed_ips)"


def test_a_spoofed_left_most_entry_is_ignored() -> None:
    hook = handler("52.52.52.52", PROXIES)
    # The client sent "X-Forwarded-For: 52.52.52.52"; the proxy appended its address.
    assert refusal(hook, "10.1.2.3", {"X-Forwarded-For": "52.52.52.52, 203.0.113.7"}) == (
        "deliveries from 203.0.113.7 are not accepted (allowed_ips)"
    )
    # And an allowed client's own spoofed entries do not refuse it, however odd.
    chain = {"X-Forwarded-For": "unknown, <script>, 1.2.3.4.5,, 52.52.52.52"}
    assert refusal(hook, "10.1.2.3", chain) is None


def test_a_chain_of_two_trusted_proxies() -> None:
    hook = handler("52.52.52.52", PROXIES)
    chain = {"X-Forwarded-For": "198.51.100.1, 52.52.52.52, 10.9.9.9"}
    assert refusal(hook, "10.1.2.3", chain) is None
    chain = {"X-Forwarded-For": "52.52.52.52, 198.51.100.1, 10.9.9.9"}
    assert refusal(hook, "10.1.2.3", chain) == (
        "deliveries from 198.51.100.1 are not accepted (allowed_ips)"
    )
    # Through an IPv6 proxy, to an IPv4-mapped client.
    chain = {"X-Forwarded-For": "::ffff:52.52.52.52, 2001:db8:ffff::2"}
    assert refusal(hook, "2001:db8:ffff::1", chain) is None


def test_when_every_hop_is_trusted_the_left_most_is_the_client() -> None:
    hook = handler(["52.52.52.52", "10.0.0.5"], PROXIES)
    assert refusal(hook, "10.1.2.3", {"X-Forwarded-For": "10.0.0.5, 10.0.0.6"}) is None
    assert refusal(hook, "10.1.2.3", {"X-Forwarded-For": "10.0.0.6, 10.0.0.5"}) is not None


@pytest.mark.parametrize(
    "entry",
    [
        "52.52.52.52",
        " 52.52.52.52 ",
        "52.52.52.52:8443",
        "::ffff:52.52.52.52",
        "[::ffff:52.52.52.52]:1",
    ],
)
def test_x_forwarded_for_entry_forms(entry: str) -> None:
    hook = handler("52.52.52.52", PROXIES)
    assert refusal(hook, "10.1.2.3", {"X-Forwarded-For": f"198.51.100.1,{entry}"}) is None


def test_x_forwarded_for_ipv6_forms() -> None:
    hook = handler("2001:db8:1::/48", PROXIES)
    for entry in ("2001:db8:1::9", "[2001:db8:1::9]", "[2001:db8:1::9]:443"):
        assert refusal(hook, "10.1.2.3", {"X-Forwarded-For": entry}) is None, entry


def test_repeated_x_forwarded_for_headers_are_one_list() -> None:
    hook = handler("52.52.52.52", PROXIES)
    pairs = [("X-Forwarded-For", "198.51.100.1"), ("x-forwarded-for", "52.52.52.52")]
    hook.check_peer("10.1.2.3", pairs)
    with pytest.raises(ForbiddenSource, match=r"198\.51\.100\.1"):
        hook.check_peer("10.1.2.3", list(reversed(pairs)))


@pytest.mark.parametrize(
    "forwarded",
    [
        "for=52.52.52.52",
        'for="52.52.52.52"',
        'for="52.52.52.52:4711"',
        "For=52.52.52.52;proto=https;by=10.0.0.1",
        "proto=https ; for=52.52.52.52 ; host=example.com",
        'for="[::ffff:52.52.52.52]:443"',
        'for=198.51.100.1, for="52.52.52.52:1";proto=https',
        'for="\\5\\2.52.52.52"',
        'for="_hidden", for=52.52.52.52',
    ],
)
def test_forwarded_header_forms(forwarded: str) -> None:
    hook = handler("52.52.52.52", PROXIES)
    assert refusal(hook, "10.1.2.3", {"Forwarded": forwarded}) is None


def test_forwarded_quoted_ipv6_with_a_port() -> None:
    hook = handler("2001:db8:1::/48", PROXIES)
    assert refusal(hook, "10.1.2.3", {"Forwarded": 'for="[2001:db8:1::17]:4711"'}) is None
    chain = 'for="[2001:db8:1::17]:4711", for="[2001:db8:ffff::9]"'
    assert refusal(hook, "2001:db8:ffff::1", {"Forwarded": chain}) is None
    chain = 'for="[2001:db8:1::17]", for="[2001:db8:2::1]"'
    assert refusal(hook, "10.1.2.3", {"Forwarded": chain}) == (
        "deliveries from 2001:db8:2::1 are not accepted (allowed_ips)"
    )


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Forwarded-For", "unknown"),
        ("X-Forwarded-For", ""),
        ("X-Forwarded-For", "52.52.52.52,"),
        ("X-Forwarded-For", "1.2.3.4.5"),
        ("X-Forwarded-For", "[52.52.52.52]"),
        ("X-Forwarded-For", "2001:db8::1:443]"),
        ("X-Forwarded-For", "52.52.52.52:port"),
        ("X-Forwarded-For", "52.52.52.52:123456"),
        ("X-Forwarded-For", "52.52.52.52, 10.0.0.7, garbage"),
        ("X-Forwarded-For", "52.52.52.52 10.0.0.7"),
        ("Forwarded", "for=unknown"),
        ("Forwarded", 'for="_obfuscated"'),
        ("Forwarded", "proto=https"),
        ("Forwarded", "for=52.52.52.52:443"),
        ("Forwarded", "for=[2001:db8::1]"),
        ("Forwarded", 'for="52.52.52.52'),
        ("Forwarded", "for=52.52.52.52;for=52.53.53.53"),
        ("Forwarded", "for=52.52.52.52,"),
        ("Forwarded", ""),
        ("Forwarded", "for"),
        ("Forwarded", "for=52.52.52.52;;proto=https"),
        ("Forwarded", 'for="52.52.52.52\x00"'),
        ("Forwarded", "for=52.52.52.52 proto=https"),
    ],
)
def test_a_malformed_header_from_a_trusted_proxy_is_refused(header: str, value: str) -> None:
    hook = handler("0.0.0.0/0", PROXIES)
    reason = refusal(hook, "10.1.2.3", {header: value})
    assert reason is not None and f"the {header} header from a trusted proxy" in reason
    assert "garbage" not in reason and "unknown" not in reason


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded"])
def test_an_oversized_header_from_a_trusted_proxy_is_refused(header: str) -> None:
    hook = handler("0.0.0.0/0", PROXIES)
    entries = ", ".join(["for=52.52.52.52" if header == "Forwarded" else "52.52.52.52"] * 2000)
    reason = refusal(hook, "10.1.2.3", {header: entries})
    assert (
        reason
        == f"the {header} header from a trusted proxy is over {MAX_FORWARDED_SIZE} characters"
    )


def test_the_two_headers_must_name_the_same_client() -> None:
    hook = handler("52.52.52.52", PROXIES)
    # The proxy writes X-Forwarded-For and passes the client's Forwarded on as sent.
    both = {"X-Forwarded-For": "203.0.113.7", "Forwarded": "for=52.52.52.52"}
    assert refusal(hook, "10.1.2.3", both) == (
        "the X-Forwarded-For and Forwarded headers from a trusted proxy name different clients"
    )
    agree = {"X-Forwarded-For": "52.52.52.52", "Forwarded": 'for="52.52.52.52:1"'}
    assert refusal(hook, "10.1.2.3", agree) is None


def test_a_refusal_never_echoes_the_headers() -> None:
    hook = handler("52.52.52.52", PROXIES)
    attack = "<script>alert(1)</script>"
    for headers in (
        {"X-Forwarded-For": attack},
        {"X-Forwarded-For": f"{attack}, 10.0.0.9"},
        {"Forwarded": f'for="{attack}"'},
        {"Forwarded": f"for={attack}"},
    ):
        reason = refusal(hook, "10.1.2.3", headers)
        assert reason is not None and attack not in reason and len(reason) < 120


# -- properties of the walk -----------------------------------------------------------


# Addresses as a server reports them; IPv4-mapped ones are their IPv4 form (tested above).
def _unmapped(address: Address) -> bool:
    return isinstance(address, ipaddress.IPv4Address) or address.ipv4_mapped is None


addresses: st.SearchStrategy[Address] = st.one_of(
    st.ip_addresses(v=4), st.ip_addresses(v=6).filter(_unmapped)
)


def xff_entry(address: Address, port: int | None) -> str:
    if address.version == 4:
        return str(address) if port is None else f"{address}:{port}"
    return f"[{address}]" if port is None else f"[{address}]:{port}"


def forwarded_element(address: Address, port: int | None) -> str:
    return f'for="{xff_entry(address, port)}";proto=https'


@st.composite
def chains(draw: st.DrawFn) -> tuple[list[Address], Address, set[Address]]:
    """Hops left to right (the entries), the peer, and which of them are trusted."""
    hops = draw(st.lists(addresses, max_size=6))
    peer = draw(addresses)
    everyone = [*hops, peer]
    trusted = {a for a in everyone if draw(st.booleans())}
    return hops, peer, trusted


def policy(trusted: set[Address]) -> PeerPolicy:
    nets = tuple(ipaddress.ip_network(a) for a in trusted)
    return PeerPolicy(allowed=(ipaddress.ip_network("0.0.0.0/0"),), trusted=nets)


def render(hops: Sequence[Address], ports: list[int | None], header: str) -> dict[str, str]:
    form = xff_entry if header == "X-Forwarded-For" else forwarded_element
    padded = [*ports, *([None] * len(hops))]
    return (
        {header: ", ".join(form(a, p) for a, p in zip(hops, padded, strict=False))} if hops else {}
    )


ports = st.lists(st.none() | st.integers(0, 65535), max_size=6)
headers_ = st.sampled_from(["X-Forwarded-For", "Forwarded"])


@given(chains(), ports, headers_)
def test_the_client_is_the_first_untrusted_hop_from_the_right(
    chain: tuple[list[Address], Address, set[Address]], port_list: list[int | None], header: str
) -> None:
    hops, peer, trusted = chain
    client = policy(trusted).client(peer, render(hops, port_list, header))
    everyone = [*hops, peer]
    assert client in everyone
    if client in trusted:
        # Only when every hop is trusted, and then it is the left-most.
        assert all(hop in trusted for hop in everyone)
        assert client == everyone[0]
    else:
        # Every hop right of the client is a trusted proxy.
        position = max(i for i, hop in enumerate(everyone) if hop == client)
        assert all(hop in trusted for hop in everyone[position + 1 :])


# What a client may write in its own header: anything but the list separator.
spoofed_entries = st.lists(
    st.text(st.characters(codec="latin-1", exclude_characters=","), max_size=40),
    min_size=1,
    max_size=5,
)
quoted_text = st.text(
    st.characters(codec="latin-1", categories=["L", "N", "P", "S", "Zs"]), max_size=40
)


@given(chains(), spoofed_entries, quoted_text, headers_)
def test_spoofed_entries_left_of_an_untrusted_hop_decide_nothing(
    chain: tuple[list[Address], Address, set[Address]],
    spoofed: list[str],
    quoted: str,
    header: str,
) -> None:
    hops, peer, trusted = chain
    marker = ipaddress.ip_address("203.0.113.77")
    assume(peer != marker)
    # The peer is trusted, so that the headers are read at all, and some hop is not:
    # the spoof sits left of it.
    trusted = trusted | {peer}
    if all(hop in trusted for hop in hops):
        hops = [*hops, marker]
        trusted = trusted - {marker}
    peers = policy(trusted)
    honest = peers.client(peer, render(hops, [], header))
    if header == "X-Forwarded-For":
        forged = ", ".join([*spoofed, render(hops, [], header)[header]])
    else:
        escaped = quoted.replace("\\", "\\\\").replace('"', '\\"')
        forged = f'for="{escaped}";by=x, for=unknown, {render(hops, [], header)[header]}'
    assert peers.client(peer, {header: forged}) == honest
