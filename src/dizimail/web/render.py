"""Pages from Jinja2 templates (issue #11), in the caller's language: Babel's catalogue of each language
(``web/locale/<lang>/LC_MESSAGES/messages.po``, read when the node starts: nothing compiled is kept in
the repository), dates, numbers and sizes in the locale's format. Rendering runs in a thread: a long
table never holds the event loop that serves mail.

Templates escape everything they print (autoescape): an address, a subject or a name from a message
is text, never markup."""

from __future__ import annotations

import asyncio
import gettext
import io
from datetime import UTC, datetime, tzinfo
from functools import cache
from pathlib import Path
from typing import Any

from babel.dates import LOCALTZ, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from dizimail.i18n.catalog import translate
from dizimail.web.session import LANGUAGES, language

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
LOCALES = HERE / "locale"
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The catalogue of a language (English: the texts as written)."""
    po = LOCALES / lang / "LC_MESSAGES" / "messages.po"
    if lang == "en" or not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def size(value: int, lang: str) -> str:
    amount, unit = float(value), 0
    while amount >= 1024 and unit < len(UNITS) - 1:
        amount, unit = amount / 1024, unit + 1
    return f"{format_decimal(amount, '#,##0.#' if unit else '#,##0', locale=lang)} {UNITS[unit]}"


def when(timestamp: float, lang: str, zone: tzinfo | None = None) -> str:
    """A time in the page's language, in ``zone`` (a webmail user's time zone), else the server's."""
    if not timestamp:
        return "—"
    return format_datetime(datetime.fromtimestamp(timestamp, UTC), "medium", tzinfo=zone or LOCALTZ, locale=lang)


def number(value: int, lang: str) -> str:
    return format_decimal(value, locale=lang)


@cache
def environment(lang: str) -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters["size"] = lambda v: size(int(v), lang)
    env.filters["when"] = pass_context(lambda ctx, v: when(float(v or 0), lang, ctx.get("zone")))
    env.filters["number"] = lambda v: number(int(v), lang)
    env.globals["error_text"] = lambda key: translate(key, lang)
    env.globals["lang"] = lang
    env.globals["languages"] = LANGUAGES
    return env


def gettext_for(request: Request) -> Any:
    return translations(language(request)).gettext


def _render(lang: str, name: str, context: dict[str, Any]) -> str:
    """In a worker thread: the first page of a language compiles its catalogue and templates (tens of
    milliseconds), every page renders; neither holds the event loop."""
    return environment(lang).get_template(name).render(**context)


async def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    lang = language(request)
    context.setdefault("path", request.url.path)
    html = await asyncio.to_thread(_render, lang, name, context)
    return HTMLResponse(html, status_code=status, headers={"Content-Security-Policy": PAGE_CSP,
                                                           "Content-Language": lang.replace("_", "-")})
