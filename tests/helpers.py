"""Small client helpers shared by protocol tests (stdlib clients over real sockets)."""

from __future__ import annotations

import imaplib
import json
import poplib
import re
import smtplib
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from conftest import PASSWORD, client_tls, dizimail_cli


def submit(server, user: str, password: str = PASSWORD) -> smtplib.SMTP:
    s = smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=30)
    try:
        s.starttls(context=client_tls())
        s.login(user, password)
    except BaseException:
        s.close()
        raise
    return s


def pop3(server, user: str, password: str = PASSWORD) -> poplib.POP3:
    p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=30)
    try:
        p.stls(client_tls())
        p.user(user)
        p.pass_(password)
    except BaseException:
        p.close()
        raise
    return p


@contextmanager
def imap_login(node, user: str, password: str = PASSWORD) -> Iterator[imaplib.IMAP4]:
    """A logged-in IMAP session (STARTTLS), logged out at the end."""
    imap = imaplib.IMAP4("127.0.0.1", node.ports["imap"], timeout=30)
    try:
        imap.starttls(client_tls())
        imap.login(user, password)
        yield imap
    finally:
        imap.logout()


def junk(node, user: str, password: str = PASSWORD) -> list[bytes]:
    """The messages in ``user``'s Junk folder (IMAP)."""
    with imap_login(node, user, password) as imap:
        imap.select("Junk", readonly=True)
        _, ids = imap.search(None, "ALL")
        return [imap.fetch(i, "(BODY.PEEK[])")[1][0][1] for i in ids[0].split()]


def fetch_all(server, user: str, password: str = PASSWORD) -> list[bytes]:
    """Every message in the user's maildrop, as bytes with CRLF line ends."""
    p = pop3(server, user, password)
    try:
        count = p.stat()[0]
        return [b"\r\n".join(p.retr(i)[1]) + b"\r\n" for i in range(1, count + 1)]
    finally:
        p.quit()


def body_of(message: bytes) -> bytes:
    """What follows our trace headers (Return-Path, Delivered-To, Received)."""
    marker = message.index(b"\r\n", message.index(b"\r\n\t") if b"\r\n\t" in message else 0)
    lines = message.split(b"\r\n")
    i = 0
    while lines[i].startswith((b"Return-Path:", b"Delivered-To:", b"Received:", b"\t")):
        i += 1
    del marker
    return b"\r\n".join(lines[i:])


class RawClient:
    """A line-oriented raw socket client for input smtplib/poplib would never send."""

    def __init__(self, port: int, timeout: float = 15) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.file = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        return self.file.readline().rstrip(b"\r\n")

    def reply(self) -> bytes:
        """A whole (possibly multi-line) SMTP reply, lines joined by newlines."""
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3:4] == b"-":
            lines.append(self.line())
        return b"\n".join(lines)

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def add_route(server, domain: str, target: str) -> None:
    """`dizimail route add` as an operator runs it, then wait until the running node sees it (its routing
    table is re-read at most every 0.5 s)."""
    import time

    from conftest import dizimail_cli

    dizimail_cli(server.config_file, "route", "add", domain, target)
    want = target.split(":", 1)[1] if target.startswith("hold:") else target.rsplit(":", 1)[0]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        route = server.call(lambda s: s.routes.get(domain))
        if route is not None and route.host == want:
            return
        time.sleep(0.05)
    raise AssertionError(f"the node did not pick up the route for {domain}")


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, what: str = "condition") -> object:
    """Poll ``predicate`` until it returns something true (returned), or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# --- SMTP from a chosen loopback address (127.0.0.x: a client of its own for lists, DNS and rates) ---


def connect(node, ip: str) -> tuple[smtplib.SMTP, int, str]:
    """An SMTP client from ``ip`` on port 25: the client, the greeting's code and text."""
    client = smtplib.SMTP(source_address=(ip, 0), timeout=30)
    code, text = client.connect("127.0.0.1", node.ports["smtp"])
    return client, code, text.decode()


def greeting(node, ip: str) -> tuple[int, str]:
    client, code, text = connect(node, ip)
    client.close()
    return code, text


def transaction(node, ip: str, sender: str, rcpt: str, helo: str = "client.example.org",
                subject: str = "") -> tuple[int, int, str]:
    """(greeting code, MAIL code, the last reply's code and text) of one try; sends the message (Subject
    ``subject``, by default "from <ip>") if every step was accepted."""
    client, code, text = connect(node, ip)
    try:
        if code != 220:
            return code, 0, text
        client.ehlo(helo)
        mail_code, mail_text = client.mail(sender)
        if mail_code != 250:
            return code, mail_code, mail_text.decode()
        rcpt_code, rcpt_text = client.rcpt(rcpt)
        if rcpt_code == 250:
            client.data(f"From: <{sender}>\r\nSubject: {subject or 'from ' + ip}\r\n\r\nhello\r\n".encode())
        return code, mail_code, f"{rcpt_code} {rcpt_text.decode()}"
    finally:
        client.close()


def send_data(node, ip: str, rcpt: str, data: bytes, sender: str = "someone@example.org") -> tuple[int, str]:
    """One message from ``ip`` to port 25, envelope accepted; the final reply to DATA (code, text)."""
    client, _code, _ = connect(node, ip)
    with client:
        client.ehlo("mail.example.org")
        assert client.mail(sender)[0] == 250 and client.rcpt(rcpt)[0] == 250
        code, text = client.data(data)
        return code, text.decode()


# --- the REST API (issue #11) ---------------------------------------------------------------------
def token(server, *args: str) -> str:
    out = dizimail_cli(server.config_file, "token", "create", *args)
    return out.stdout.strip().splitlines()[-1]


def api(server, method: str, path: str, secret: str | None = None, body: Any = None, *, raw: bytes | None = None,
        lang: str = "en") -> tuple[int, dict[str, str], Any]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    url = f"https://127.0.0.1:{server.ports['https']}{quote(path, safe='/:@?&=')}"  # 电力.cn as a browser sends it
    request = urllib.request.Request(url, data=data, method=method)
    if secret is not None:
        request.add_header("Authorization", f"Bearer {secret}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    request.add_header("Accept-Language", lang)
    try:
        with urllib.request.urlopen(request, context=client_tls(), timeout=15) as response:
            status, headers, text = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        status, headers, text = exc.code, dict(exc.headers), exc.read()
    return status, {k.lower(): v for k, v in headers.items()}, json.loads(text) if text else None


def greeting_delays(port: int, count: int = 10, pause: float = 0.1, greeting: bytes = b"220") -> list[float]:
    """Seconds each of ``count`` fresh clients waited for its greeting (SMTP's 220; IMAP's ``* OK``),
    ``pause`` between them."""
    delays = []
    for _ in range(count):
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            assert sock.makefile("rb").readline().startswith(greeting)
        delays.append(time.monotonic() - started)
        time.sleep(pause)
    return delays


@contextmanager
def busy(*loops: Callable[[], None]) -> Iterator[None]:
    """Each callable called again and again in a thread of its own while the block runs (a load)."""
    stop = threading.Event()

    def run(step: Callable[[], None]) -> None:
        while not stop.is_set():
            step()
    workers = [threading.Thread(target=run, args=(step,)) for step in loops]
    for w in workers:
        w.start()
    try:
        time.sleep(0.5)  # under way before the block measures anything
        yield
    finally:
        stop.set()
        for w in workers:
            w.join(60)


def auth_results(message: bytes) -> str:
    """A delivered message's Authentication-Results header (RFC 8601), unfolded."""
    head = message.split(b"\r\n\r\n", 1)[0].decode()
    match = re.search(r"^Authentication-Results: ([^\r\n]*(?:\r\n\t[^\r\n]*)*)", head, re.M)
    assert match, head
    return re.sub(r"\r\n\t", " ", match.group(1))
