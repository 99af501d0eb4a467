"""HTML parse mode exactly as tdlib's parse_html: what Telegram refuses is refused, with Telegram's words."""

from __future__ import annotations

import pytest

from sandbox.telegram import ApiError, Emulator, parse_html, visible_text
from tests.unit.sandbox.telegram.conftest import USER, call, refused


def html_error(text: str) -> str:
    with pytest.raises(ApiError) as e:
        parse_html(text)
    assert e.value.code == 400
    return e.value.description


@pytest.mark.parametrize(
    ("text", "tag", "offset"),
    [("I <3 you", "3", 2), ("a < b", "", 2), ("Gift <Card>", "card", 5), ("价格 <b>", None, None)],
)
def test_a_bare_less_than_sign_is_an_unsupported_start_tag(text: str, tag: str | None, offset: int) -> None:
    if tag is None:  # "<b>" is a tag, but never closed
        assert 'Can\'t find end tag corresponding to start tag "b"' in html_error(text)
        return
    assert html_error(text) == (
        f'Bad Request: can\'t parse entities: Unsupported start tag "{tag}" at byte offset {offset}'
    )


def test_the_byte_offset_in_errors_counts_utf8_bytes() -> None:
    assert "at byte offset 7" in html_error("价格 <x>")  # two 3-byte characters and a space


@pytest.mark.parametrize("tag", ["script", "div", "p", "br", "img", "font", "h1", "sup"])
def test_tags_telegram_does_not_know_are_refused(tag: str) -> None:
    assert f'Unsupported start tag "{tag}"' in html_error(f"<{tag}>x</{tag}>")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b", "Unclosed start tag at byte offset 0"),
        ('<a href="x', "Unclosed start tag"),
        ("<b>x</b", "Unclosed end tag at byte offset 4"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler"'),
        ('<span class="spoiler">x</span>', 'Tag "span" must have class "tg-spoiler"'),
        ('<tg-emoji emoji-id="abc">👍</tg-emoji>', "Invalid custom emoji identifier specified"),
        ("<b =x>y</b>", 'Empty attribute name in the tag "b"'),
        ("<a href=x/y>z</a>", "Unexpected end of name token"),
    ],
)
def test_unclosed_misnested_and_malformed_tags_are_refused(text: str, fragment: str) -> None:
    assert fragment in html_error(text)


def test_tags_and_attributes_telegram_allows_are_accepted_and_become_entities() -> None:
    text, entities = parse_html(
        "<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>n</ins><s>s</s><strike>k</strike><del>d</del>"
        '<a href="https://t.me/x">l</a><span class="tg-spoiler">p</span><tg-spoiler>q</tg-spoiler>'
        '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji><code class="language-python">c</code>'
        "<pre>r</pre><blockquote>o</blockquote><blockquote expandable>x</blockquote>"
        '<B CLASS="ignored">upper</B>'
    )
    assert text == "bsieunskdlpq👍croxupper"
    kinds = [e["type"] for e in entities]
    assert kinds == [
        "bold",
        "bold",
        "italic",
        "italic",
        "underline",
        "underline",
        "strikethrough",
        "strikethrough",
        "strikethrough",
        "text_link",
        "spoiler",
        "spoiler",
        "custom_emoji",
        "code",
        "pre",
        "blockquote",
        "expandable_blockquote",
        "bold",
    ]
    link = entities[kinds.index("text_link")]
    assert link["url"] == "https://t.me/x"
    assert entities[kinds.index("code")]["language"] == "python"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("&lt;b&gt; &amp; &quot;", '<b> & "'),
        ("&#60;&#x3C;&#62", "<<>"),  # numeric, hexadecimal, and the ';' is optional
        ("&nbsp;&copy;&unknown;", "&nbsp;&copy;&unknown;"),  # tdlib keeps names it does not know as typed
        ("AT&T & co", "AT&T & co"),  # a lone '&' is text
        ("a > b", "a > b"),  # so is '>'
        ("&#0;&#1114111;", "&#0;&#1114111;"),  # not characters: kept as typed
    ],
)
def test_entities_are_decoded_as_tdlib_decodes_them(text: str, shown: str) -> None:
    assert visible_text(text, "HTML") == shown


def test_entity_offsets_count_utf16_code_units() -> None:
    _, entities = parse_html("😀 <b>键</b> <i>x</i>")
    assert [(e["offset"], e["length"]) for e in entities] == [(3, 1), (5, 1)]  # 😀 is two UTF-16 units


@pytest.mark.parametrize("mode", ["HTML", "html", "Html", "Markdown", "MarkdownV2", "markdownv2", "", None])
async def test_parse_mode_is_html_markdown_or_markdownv2_in_any_case(emu: Emulator, mode: str | None) -> None:
    await call(emu, "sendMessage", chat_id=USER, text="ok", parse_mode=mode)


@pytest.mark.parametrize("mode", ["HTML5", "markdown2", "text", "plain", "htm"])
async def test_a_bogus_parse_mode_is_refused(emu: Emulator, mode: str) -> None:
    e = await refused(emu, "sendMessage", chat_id=USER, text="ok", parse_mode=mode)
    assert e.code == 400 and e.description == "Bad Request: unsupported parse_mode"


async def test_unescaped_text_is_refused_in_send_and_edit_and_caption(emu: Emulator) -> None:
    e = await refused(emu, "sendMessage", chat_id=USER, text="Gift <Card>", parse_mode="HTML")
    assert "Unsupported start tag" in e.description
    msg = await call(emu, "sendMessage", chat_id=USER, text="ok", parse_mode="HTML")
    e = await refused(
        emu, "editMessageText", chat_id=USER, message_id=msg["message_id"], text="a < b", parse_mode="HTML"
    )
    assert "Unsupported start tag" in e.description
    e = await refused(
        emu, "sendDocument", chat_id=USER, document=("k.txt", b"k"), caption="I <3", parse_mode="HTML"
    )
    assert "can't parse entities" in e.description


async def test_the_sent_message_shows_parsed_text_with_its_entities(emu: Emulator) -> None:
    msg = await call(emu, "sendMessage", chat_id=USER, text="<b>Key</b> &amp; co", parse_mode="HTML")
    assert msg["text"] == "Key & co"
    assert msg["entities"] == [{"type": "bold", "offset": 0, "length": 3}]
    assert "_html" not in msg  # the emulator's notes stay out of what the bot gets back
