"""The dashboard's markup: every value escaped, in every context it is used in."""

from __future__ import annotations

import html
import html.parser
import json
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookshield import SQLiteInbox, StoredDelivery
from hookshield._core.text import printable
from hookshield._dashboard._html import Markup, escape, href, join, tag, text_block
from hookshield._durable.inbox import new_id
from hookshield._durable.refused import RefusedDelivery
from hookshield.dashboard import wsgi_app

from .. import servers
from .support import HOSTILE, Visitor, structure

#: Any text at all: markup, quotes, entities, control characters, lone surrogates.
TEXT = st.text(
    alphabet=st.characters(codec=None, exclude_categories=()), min_size=1, max_size=60
) | st.sampled_from([HOSTILE, "<", ">", '"', "'", "&", "&amp;", "<!--", "]]>", "\x00", "\ud800"])

_ENTITY = re.compile(r"&(amp|lt|gt|quot|#x27);")


def test_the_five_characters_are_escaped() -> None:
    assert escape("<a href=\"x\" title='y'>&</a>") == (
        "&lt;a href=&quot;x&quot; title=&#x27;y&#x27;&gt;&amp;&lt;/a&gt;"
    )
    assert escape(Markup("<b>")) == "<b>"  # made here: left as it is


def test_a_value_cannot_reorder_or_break_the_line_it_is_shown_in() -> None:
    # A right-to-left override would show "evt_1mp3"; a line separator, a new line.
    assert escape("evt_1\u202e3pm\u2028") == "evt_1\\u202e3pm\\u2028"


@given(TEXT)
def test_an_escaped_value_holds_no_markup_character(value: str) -> None:
    escaped = escape(value)
    assert not set("<>\"'") & set(escaped)
    assert _ENTITY.sub("", escaped).count("&") == 0  # every & starts an entity
    assert html.unescape(escaped) == printable(value)
    escaped.encode("utf-8")  # a page is always encodable: no lone surrogate is left


@given(TEXT)
def test_a_text_block_keeps_lines_and_escapes_the_rest(value: str) -> None:
    block = text_block(value + "\nline two")
    assert not set("<>\"'") & set(block)
    assert html.unescape(block) == printable(value + "\nline two", lines=True)


class _One(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text += data

    def handle_comment(self, data: str) -> None:
        self.tags.append(("<!--", {}))


@given(TEXT, TEXT)
def test_a_value_in_an_attribute_or_text_stays_there(attribute: str, text: str) -> None:
    parser = _One()
    parser.feed(tag("td", {"title": attribute, "data-x": text}, text))
    parser.close()
    assert parser.tags == [("td", {"title": printable(attribute), "data-x": printable(text)})]
    assert parser.text == printable(text)


@given(TEXT, TEXT)
def test_a_link_keeps_its_path_and_encodes_its_query(key: str, value: str) -> None:
    link = href("/inbox", "/delivery", {"id": value, "type": key})
    assert link.startswith("/inbox/delivery?")
    parser = _One()
    parser.feed(tag("a", {"href": link}, "x"))
    assert parser.tags == [("a", {"href": link})]
    assert not set("<>\"' ") & set(link.partition("?")[2])


def test_names_are_the_code_s_own() -> None:
    with pytest.raises(ValueError, match="not an attribute name"):
        tag("a", {"onclick x": 1})
    with pytest.raises(ValueError, match="not an element name"):
        tag("script src")
    assert tag("input", {"disabled": True, "value": None, "name": False}) == "<input disabled>"
    assert join(["<", Markup("<br>")]) == "&lt;<br>"


# -- whole pages: what a sender wrote changes text, never the markup -------------------------


def _stored_text(text: str) -> str:
    """``text`` as a TEXT column can hold it: a lone surrogate (which only an event type
    decoded from malformed JSON can carry, and which the inbox keeps JSON-escaped) is
    replaced."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _delivery(inbox: SQLiteInbox, text: str) -> StoredDelivery:
    stored_text = _stored_text(text)
    stored = StoredDelivery(
        id=new_id(),
        sender=stored_text,
        handler=stored_text,
        body=text.encode("utf-8", "surrogatepass"),
        headers=(("x-note", stored_text), ("content-type", stored_text)),
        received=1_800_000_000.0,
        event_types=(text,),
        state="dead",
        attempts=2,
        last_error=stored_text,
        next_attempt=1_800_000_000.0,
    )
    inbox.put(stored)
    return stored


def _refusal(inbox: SQLiteInbox, text: str) -> RefusedDelivery:
    stored_text = _stored_text(text)
    refused = RefusedDelivery(
        id=new_id(),
        sender=stored_text,
        handler=stored_text,
        status=401,
        error="InvalidSignature",
        reason=stored_text,
        peer=stored_text,
        received=1_800_000_000.0,
        headers=(("x-note", stored_text),),
        body=text.encode("utf-8", "surrogatepass"),
        body_size=len(text.encode("utf-8", "surrogatepass")),
    )
    assert inbox.keep_refusal(refused)
    return refused


def _pages(tmp: Path, text: str) -> dict[str, str]:
    """Every page that shows the sender's text, rendered from a real inbox."""
    inbox = SQLiteInbox(tmp / "inbox.db", keep_refused=5)
    stored = _delivery(inbox, text)
    refused = _refusal(inbox, text)
    inbox.pause(stored.sender)  # the paused box, the row's mark, the overview's Resume
    visitor = Visitor(wsgi_app(inbox))
    paths = {
        "list": "/",
        "filtered": "/?" + "state=dead",
        "by sender": "/?" + urllib.parse.urlencode({"sender": stored.sender}),
        "delivery": f"/delivery?id={stored.id}",
        "refusals": "/refused",
        "refusal": f"/refused/one?id={refused.id}",
        "overview": "/overview",
    }
    pages = {}
    for name, path in paths.items():
        response = visitor.get(path)
        assert response.status_code == 200, (name, response.get_data(as_text=True)[-500:])
        pages[name] = response.get_data(as_text=True)
    return pages


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=TEXT)
def test_sender_text_never_changes_a_page_s_markup(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    hostile = _pages(tmp_path_factory.mktemp("hostile"), text)
    plain = _pages(tmp_path_factory.mktemp("plain"), "plain")
    for name, page in hostile.items():
        assert structure(page) == structure(plain[name]), name
        assert "<script" not in page.lower()


def test_the_hostile_sample_shows_as_text(tmp_path: Path) -> None:
    pages = _pages(tmp_path, HOSTILE)
    shown = html.escape(HOSTILE, quote=True)
    for name in ("delivery", "refusal"):
        assert shown in pages[name], name
        assert "<img" not in pages[name] and "<svg onload" not in pages[name]


def test_the_dashboard_needs_nothing_but_the_standard_library() -> None:
    check = (
        "import json, sys; before = set(sys.modules); import hookshield.dashboard; "
        "loaded = {n.partition('.')[0] for n in set(sys.modules) - before}; "
        "print(json.dumps(sorted(loaded - set(sys.stdlib_module_names) - {'hookshield'})))"
    )
    # This checkout's src first, as the servers the tests start have it.
    env = servers.environment(HOOKSHIELD_NO_SPEEDUPS="1")
    ran = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(ran.stdout) == []
