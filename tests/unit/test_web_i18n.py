"""Every text of the web pages exists in Simplified Chinese (issue #11): the texts are extracted from the
templates and the web code as Babel extracts them (scripts/web-messages), and each must have its
translation in web/locale/zh_CN, not marked fuzzy, with the same %(name)s placeholders."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

import dizimail.web
from dizimail.i18n.catalog import CATALOG
from dizimail.web.pages import DONE
from dizimail.web.render import environment, size, translations

WEB = Path(dizimail.web.__file__).parent
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def extracted() -> set[str]:
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "True", "lstrip_blocks": "True"}}
    return {message for _file, _line, message, _comments, _context in
            extract_from_dir(str(WEB), method_map, options) if isinstance(message, str)}


def test_every_text_of_the_pages_has_its_chinese_translation() -> None:
    texts = extracted()
    assert len(texts) > 150  # the extraction found the templates
    with (WEB / "locale" / "zh_CN" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale="zh_CN")
    missing = sorted(t for t in texts if not (m := catalog.get(t)) or not m.string or m.fuzzy)
    assert missing == [], "texts without a zh_CN translation (run scripts/web-messages, then translate)"
    for text in texts:
        assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(catalog.get(text).string)), text
    stale = sorted(str(m.id) for m in catalog if m.id and m.id not in texts)
    assert stale == [], "translations of texts the pages no longer have"


def test_the_catalogue_is_the_one_the_pages_use() -> None:
    assert translations("zh_CN").gettext("Dashboard") == "仪表盘"
    assert translations("en").gettext("Dashboard") == "Dashboard"
    page = environment("zh_CN").from_string('{{ _("%(count)s messages", count=3) }} {{ 1536|size }}').render()
    assert page == "3 封邮件 1.5 KiB"
    assert size(5 * 1024**3, "en") == "5 GiB"


def test_every_message_a_page_can_announce_is_written_in_the_layout() -> None:
    layout = (WEB / "templates" / "base.html").read_text(encoding="utf-8")
    assert {key for key in DONE if f'"{key}":' not in layout} == set()
    keys = set()
    for path in (WEB / "pages.py", WEB / "api.py"):
        keys |= set(re.findall(r'error="([a-z_]+)"', path.read_text()))
        keys |= set(re.findall(r'PageError\(\d+, "([a-z_]+)"\)', path.read_text()))
    assert keys and keys <= CATALOG.keys()
    assert all(CATALOG[k].get("zh_CN") for k in keys)
