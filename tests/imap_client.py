"""A small line-level IMAP client for protocol tests that need the exact order of responses
(imaplib sorts untagged data into buckets, which hides it). Speaks IMAPS with LOGIN."""

from __future__ import annotations

import socket

from conftest import PASSWORD, client_tls


class ImapLines:
    def __init__(self, port: int, user: str, password: str = PASSWORD, timeout: float = 15) -> None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock = client_tls().wrap_socket(raw)
        self.file = self.sock.makefile("rb")
        self.count = 0
        assert self.line().startswith("* OK")
        self.ok(f'LOGIN "{user}" "{password}"')

    def line(self) -> str:
        """One response line; a literal in it is read and kept inline as ``{n}`` + its text."""
        raw = self.file.readline()
        if not raw:
            raise ConnectionError("server closed the connection")
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        while text.endswith("}") and "{" in text:
            size = int(text[text.rindex("{") + 1 : -1])
            text += self.file.read(size).decode("utf-8", "replace")
            text += self.file.readline().decode("utf-8", "replace").rstrip("\r\n")
        return text

    def send(self, text: str | bytes) -> None:
        self.sock.sendall((text.encode() if isinstance(text, str) else text) + b"\r\n")

    def command(self, text: str | bytes) -> tuple[list[str], str]:
        """Send one command; return the untagged lines (in order) and the tagged line."""
        self.count += 1
        tag = f"t{self.count}"
        self.send(tag.encode() + b" " + (text.encode() if isinstance(text, str) else text))
        lines = []
        while not (line := self.line()).startswith(tag + " "):
            lines.append(line)
        return lines, line

    def ok(self, text: str | bytes) -> list[str]:
        lines, done = self.command(text)
        assert done.split(" ")[1] == "OK", (text, lines, done)
        return lines

    def append(self, mailbox: str, message: bytes, flags: str = "") -> list[str]:
        head = f'APPEND "{mailbox}" ({flags}) {{{len(message)}+}}\r\n'.encode()
        return self.ok(head + message)

    def close(self) -> None:
        try:
            self.send(b"z LOGOUT")
        except OSError:
            pass
        self.file.close()
        self.sock.close()


def message(subject: str, size: int = 0) -> bytes:
    """A small message, padded to ``size`` octets when given."""
    data = f"From: a@example.test\r\nTo: b@example.test\r\nSubject: {subject}\r\n\r\nbody\r\n".encode()
    return data + b"x" * (size - len(data) - 2) + b"\r\n" if size else data
