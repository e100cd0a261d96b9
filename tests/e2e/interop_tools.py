"""Helpers for the interop tests: run real Debian mail clients and look at what the user would see."""

from __future__ import annotations

import email
import email.header
import email.message
import email.policy
import os
import re
import shutil
import smtplib
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ServerThread, dizimail_cli
from helpers import pop3

TIMEOUT = 60


def need(*names: str) -> str:
    """Path of the first installed program; a missing tool is a failure (scripts/test-deps.sh installs it)."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(f"{' or '.join(names)} is not installed; run scripts/test-deps.sh (part of `make test`)")


@dataclass
class Result:
    argv: list[str]
    rc: int
    stdout: str
    stderr: str

    @property
    def out(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:
        return (f"$ {' '.join(self.argv)}\n[exit {self.rc}]\n"
                f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}")


def run(argv: list[str], *, env: dict[str, str] | None = None, input: bytes = b"",
        timeout: float = TIMEOUT) -> Result:
    p = subprocess.run(argv, check=False, capture_output=True, timeout=timeout, env=env, input=input)
    return Result(argv, p.returncode, p.stdout.decode("utf-8", "replace"),
                  p.stderr.decode("utf-8", "replace"))


def swaks(server: ServerThread, listener: str, *args: str) -> Result:
    return run([need("swaks"), "--server", "127.0.0.1", "--port", str(server.ports[listener]),
                "--timeout", "30", "--helo", "client.example.net", *args])


def cert_file(server: ServerThread) -> Path:
    return server.config.path(server.config.tls.cert_file)


def new_user(server: ServerThread, prefix: str = "peer") -> str:
    return server.add_user(f"{prefix}{uuid.uuid4().hex[:10]}")


def remote_address(prefix: str = "friend") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@remote.example.org"


# --- POP3 as the mailbox owner sees it (stdlib client, STLS) -------------------------------------------


def stat(server: ServerThread, user: str) -> int:
    p = pop3(server, user)
    try:
        return int(p.stat()[0])
    finally:
        p.quit()


def maildrop(server: ServerThread, user: str) -> list[bytes]:
    """Every message in the maildrop as exact bytes (CRLF line ends, dot-unstuffed); checks LIST sizes too."""
    p = pop3(server, user)
    try:
        count = int(p.stat()[0])
        messages = []
        for i in range(1, count + 1):
            listed = int(p.list(i).split()[2])
            resp, lines, _ = p.retr(i)
            data = b"\r\n".join(lines) + b"\r\n"
            assert listed == len(data), f"LIST says {listed} octets, RETR gave {len(data)} ({resp!r})"
            messages.append(data)
        return messages
    finally:
        p.quit()


def delete_message(server: ServerThread, user: str, number: int) -> None:
    p = pop3(server, user)
    try:
        p.dele(number)
    finally:
        p.quit()


def uidls(server: ServerThread, user: str) -> list[bytes]:
    p = pop3(server, user)
    try:
        return [line.split()[1] for line in p.uidl()[1]]
    finally:
        p.quit()


TRACE = (b"Return-Path:", b"Delivered-To:", b"Received:")


def split_trace(message: bytes) -> tuple[bytes, bytes]:
    """(trace header block the server prepended, the message exactly as the client sent it)."""
    lines = message.split(b"\r\n")
    i = 0
    while i < len(lines) and (lines[i].startswith(TRACE) or (i and lines[i][:1] in (b" ", b"\t"))):
        i += 1
    return b"\r\n".join(lines[:i]) + b"\r\n", b"\r\n".join(lines[i:])


def parse(message: bytes) -> email.message.EmailMessage:
    msg = email.message_from_bytes(message, policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


def subject(message: bytes) -> str:
    raw = parse(message)["Subject"]
    return str(raw) if raw is not None else ""


def text_body(message: bytes) -> str:
    msg = parse(message)
    payload = msg.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(msg.get_content_charset() or "utf-8")


def deliver(server: ServerThread, recipient: str, message: bytes,
            sender: str = "sender@outside.example") -> None:
    """Set-up only: put a message in a local maildrop over the MX port."""
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        assert s.sendmail(sender, [recipient], message) == {}


def utf8_message(recipient: str, subject_text: str, body_text: str,
                 sender: str = "sender@outside.example") -> bytes:
    """A MIME message with an encoded-word Subject and a raw 8-bit UTF-8 body, CRLF line ends."""
    encoded = email.header.Header(subject_text, "utf-8").encode()
    head = (f"From: {sender}\r\nTo: {recipient}\r\nSubject: {encoded}\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
    return head.encode("ascii") + body_text.replace("\n", "\r\n").encode("utf-8")


# --- the admin's view of the queue ----------------------------------------------------------------------


def queue_list(server: ServerThread) -> str:
    return dizimail_cli(server.config_file, "queue", "list").stdout


def queue_rows(server: ServerThread, queue_id: str) -> list[list[str]]:
    """Table rows of one queue entry: the row with its id plus continuation rows (further recipients)."""
    rows: list[list[str]] = []
    inside = False
    for line in queue_list(server).splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]
        if len(cells) != 7:  # queue id, age, size, from, to, status, next attempt
            continue
        if cells[0]:
            inside = cells[0] == queue_id
        if inside and cells[4]:  # a row without a recipient is a wrapped status line
            rows.append(cells)
    return rows


QUEUED_AS = re.compile(r"queued as ([0-9A-Za-z]+)")


def queued_id(text: str) -> str:
    m = QUEUED_AS.search(text)
    assert m, f"no 'queued as <id>' in:\n{text}"
    return m.group(1)


def private_file(path: Path, text: str) -> Path:
    """Clients refuse config files with passwords that others can read."""
    path.write_text(text)
    path.chmod(0o600)
    return path


def home_env(home: Path) -> dict[str, str]:
    env = dict(os.environ, HOME=str(home), LC_ALL="C.UTF-8")
    env.pop("FETCHMAILHOME", None)
    env.pop("MAIL", None)
    return env

