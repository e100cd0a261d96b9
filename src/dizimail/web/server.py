"""The ``https`` listener (DESIGN.md §1, port base + 443): our own listening sockets, admission and TLS
context (net.listener: per-client connection limits counted at accept, handshake timeout, the hardened
suites of app.tls), each admitted connection served by uvicorn's HTTP/1.1 protocol (h11) running the
ASGI app of web.api on the node's event loop."""

from __future__ import annotations

import logging
import ssl

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from dizimail.config.schema import Config
from dizimail.net.connection import Connection
from dizimail.net.listener import Listener
from dizimail.services.contacts import MAX_IMPORT
from dizimail.services.limits import ConnectionLimiter
from dizimail.web.api import WebContext, make_app
from dizimail.web.guard import guarded
from dizimail.web.pages_mail import MAX_MBOX

log = logging.getLogger("dizimail.web")
KEEP_ALIVE = 5.0  # seconds an idle kept-alive connection stays open
MAX_HEAD = 16 * 1024  # bytes of a request line and headers
SEND_SLACK = 2 << 20  # the compose form's fields and multipart framing beside the attachments


def https_listener(config_: Config, services: WebContext, host: str, port: int, tls: ssl.SSLContext, *,
                   limiter: ConnectionLimiter) -> Listener:
    sending = config_.limits.max_message_size + SEND_SLACK  # a message and its attachments, as a form
    larger = {"/mail/send": sending, "/mail/draft": sending, "/mail/import": MAX_MBOX + SEND_SLACK,
              "/mail/contacts": MAX_IMPORT + SEND_SLACK}  # webmail's forms that carry files
    config = uvicorn.Config(guarded(make_app(services), larger), lifespan="off", log_config=None, access_log=False,
                            server_header=False, proxy_headers=False, timeout_keep_alive=int(KEEP_ALIVE),
                            h11_max_incomplete_event_size=MAX_HEAD)
    config.load()
    state = ServerState()
    limits = config_.limits

    def protocol() -> H11Protocol:
        return H11Protocol(config, state, {})

    async def unused(conn: Connection) -> None:  # every admitted connection is hosted; refused ones closed
        await conn.close()

    admit, release = limiter.gate(services.accounts.auth_refused)
    return Listener("https", host, port, unused, lambda conn, reason: unused(conn), admit=admit, release=release,
                    max_connections=limits.max_connections, tls=tls, handshake_timeout=limits.tls_handshake_timeout,
                    hosted=protocol)
