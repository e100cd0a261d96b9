"""What webmail's rich-text editor sends (issue #13): its HTML cleaned to a small set of text markup (nh3:
no style, no script, no image from elsewhere, links to http, https and mailto only), and the text/plain
alternative every such message carries, made from it (stdlib html.parser: one pass, linear)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3

TAGS = {"p", "br", "div", "b", "strong", "i", "em", "u", "s", "ul", "ol", "li", "blockquote", "a", "h1", "h2", "h3",
        "pre", "code", "hr"}
BLOCKS = {"p", "div", "ul", "ol", "blockquote", "h1", "h2", "h3", "pre", "hr", "tr", "table"}
MAX_HTML = 2_000_000
_BLANKS = re.compile(r"\n{3,}")


def clean_compose(markup: str) -> str:
    """The editor's HTML as it goes out: text markup and links only."""
    return nh3.clean(markup[:MAX_HTML], tags=TAGS, attributes={"a": {"href"}}, url_schemes={"http", "https", "mailto"},
                     link_rel=None, strip_comments=True)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.quote = 0  # depth of <blockquote>: lines get "> "
        self.pre = 0
        self.href: list[str | None] = []

    def _newline(self) -> None:
        if self.out and not self.out[-1].endswith("\n"):
            self.out.append("\n")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in BLOCKS or tag == "li":
            self._newline()
        if tag == "br":
            self.out.append("\n")
        elif tag == "li":
            self.out.append("- ")
        elif tag == "blockquote":
            self.quote += 1
        elif tag == "pre":
            self.pre += 1
        elif tag == "hr":
            self.out.append("----\n")
        elif tag == "a":
            self.href.append(dict(attrs).get("href"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "blockquote":
            self.quote = max(0, self.quote - 1)
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
        elif tag == "a" and self.href:
            href = self.href.pop()
            if href and not href.startswith("mailto:") and (not self.out or href not in self.out[-1]):
                self.out.append(f" <{href}>")
        if tag in BLOCKS or tag == "li":
            self._newline()
        if tag in ("p", "h1", "h2", "h3") and not self.quote:
            self.out.append("\n")  # a blank line after a paragraph

    def handle_data(self, data: str) -> None:
        text = data if self.pre else re.sub(r"\s+", " ", data)
        if not self.pre and (not self.out or self.out[-1].endswith("\n")):
            text = text.lstrip()
        if text and self.quote and (not self.out or self.out[-1].endswith("\n")):
            text = "> " * self.quote + text
        if text:
            self.out.append(text)


def html_text(markup: str) -> str:
    """The text of HTML as a mail program shows a text/plain alternative: paragraphs, lists with "- ",
    quotes with "> ", a link's address after its text."""
    parser = _Text()
    parser.feed(markup[:MAX_HTML])
    parser.close()
    text = "".join(parser.out)
    lines = [line.rstrip() for line in text.split("\n")]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip("\n") + "\n"
