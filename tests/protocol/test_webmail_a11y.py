"""Webmail for everyone (issue #13): every control of every webmail page has a name a screen reader reads
(inside a <label>, or aria-label / title, or the button's own text), every page says its language, every
image has its alt text, and in Chinese no English word of the interface is left (the catalogue test checks
the texts; this checks the pages as served)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from conftest import PASSWORD
from web_tools import WebClient, deliver, uid_of


class Controls(HTMLParser):
    """The form controls of a page without an accessible name, and images without alt."""

    def __init__(self) -> None:
        super().__init__()
        self.labels = 0  # depth of <label>
        self.nameless: list[str] = []
        self.button: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        named = self.labels or a.get("aria-label") or a.get("title") or a.get("aria-hidden") == "true"
        if tag == "label":
            self.labels += 1
        elif tag == "input" and a.get("type") not in ("hidden", "submit") and not named:
            self.nameless.append(f"input {a.get('name')}")
        elif tag in ("select", "textarea") and not named and "hidden" not in a:
            self.nameless.append(f"{tag} {a.get('name')}")
        elif tag == "img" and a.get("alt") is None:
            self.nameless.append(f"img {a.get('src')}")
        elif tag == "button":
            self.button = (a.get("name") or a.get("id") or "?", [a.get("aria-label") or a.get("title") or ""])

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.labels -= 1
        elif tag == "button" and self.button is not None:
            if not "".join(self.button[1]).strip():
                self.nameless.append(f"button {self.button[0]}")
            self.button = None

    def handle_data(self, data: str) -> None:
        if self.button is not None:
            self.button[1].append(data)


def test_every_control_of_every_webmail_page_has_a_name(server, user):
    deliver(server, user, b"From: a@outside.example\r\nSubject: for the page\r\nMIME-Version: 1.0\r\n"
                          b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n'
                          b"text\r\n--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=a.png"
                          b"\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgoAAAAA\r\n--b--\r\n")
    for lang, html_lang in (("zh-CN", "zh-CN"), ("en", "en")):
        web = WebClient(server, lang=lang)
        inbox = web.login(user, PASSWORD, admin=False)
        uid = uid_of(inbox.text, "for the page")
        for path in ("/mail", "/mail?threads=1", f"/mail/read?f=INBOX&uid={uid}", "/mail/compose",
                     f"/mail/compose?f=INBOX&reply={uid}", "/mail/folders", "/mail/settings", "/mail/settings/sieve",
                     "/mail/contacts", "/mail/directory", f"/mail/conversation?f=INBOX&uid={uid}", "/mail/scheduled"):
            page = web.get(path)
            assert page.status == 200, path
            assert f'<html lang="{html_lang}"' in page.text, path
            parser = Controls()
            parser.feed(page.text)
            assert parser.nameless == [], (path, parser.nameless)
            if lang == "zh-CN":  # no interface word left in English (the user's own words aside)
                visible = re.sub(r"<[^>]+>", " ", page.text.split("<main>")[1])
                for word in ("Inbox", "Send", "Delete", "Search", "Settings", "Contacts", "Reply"):
                    assert not re.search(rf"\b{word}\b", visible), (path, word)
