"""The ASGI layer around the HTTPS side (issue #11): security headers on every answer (a page sets its own
Content-Security-Policy, web.render; everything else gets one that allows nothing), request bodies cut
at MAX_BODY (413) whether announced or found while read; the 413 in the caller's language."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dizimail.i18n.catalog import translate
from dizimail.web.documents import MAX_BODY

SECURITY_HEADERS = [(b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
                    (b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"), (b"cache-control", b"no-store"),
                    (b"strict-transport-security", b"max-age=31536000")]


def guarded(app: ASGIApp, larger: dict[str, int] | None = None) -> ASGIApp:
    """Security headers on every answer; request bodies cut at MAX_BODY (413), whatever Content-Length says;
    ``larger``: paths that take more (webmail's sending, with its attachments: the message size limit)."""
    wider = larger or {}

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        lang = "zh_CN" if headers.get(b"accept-language", b"")[:200].lower().startswith(b"zh") else "en"
        declared = headers.get(b"content-length", b"0")
        most = wider.get(scope.get("path", ""), MAX_BODY) if scope.get("method") == "POST" else MAX_BODY
        if not declared.isdigit() or int(declared) > most:
            await _too_large(send, lang)
            return
        seen = 0
        refused = False  # the 413 is sent: whatever the app answers after it is dropped

        async def counted() -> Message:
            nonlocal seen, refused
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > most and not refused:
                refused = True
                await _too_large(send, lang)
            return {"type": "http.disconnect"} if refused else message

        async def secured(message: Message) -> None:
            if refused:
                return
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _value in message.get("headers", ())}
                message["headers"] = [*message.get("headers", ()),
                                      *(h for h in SECURITY_HEADERS if h[0] not in present)]
            await send(message)
        await app(scope, counted, secured)
    return wrapper


async def _too_large(send: Callable[[Message], Awaitable[None]], lang: str) -> None:
    body = json.dumps({"error": "too_large", "message": translate("too_large", lang)}, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})
