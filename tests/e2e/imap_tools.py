"""Helpers for the IMAP interop tests: stdlib and imapclient sessions, Maildirs on disk, a terminal in tmux."""

from __future__ import annotations

import email.header
import imaplib
import os
import re
import shutil
import smtplib
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from imapclient import IMAPClient, imap_utf7
from interop_tools import cert_file, need, parse

from conftest import PASSWORD, ServerThread

# --- the server's view, read back over IMAP with imaplib (STARTTLS, verifying our certificate) ------------


def verifying_tls(server: ServerThread) -> ssl.SSLContext:
    """Trust exactly the server's certificate and check it names "localhost", as a configured client would."""
    return ssl.create_default_context(cafile=str(cert_file(server)))


def wire_name(folder: str) -> str:
    """A folder name as modified UTF-7, the way the client library (not the server) encodes it."""
    return imap_utf7.encode(folder).decode("ascii")


def quoted(folder: str) -> str:
    return '"' + wire_name(folder) + '"'


def ok(result: tuple[str, list]) -> list:
    typ, data = result
    assert typ == "OK", data
    return data


@contextmanager
def imap(server: ServerThread, user: str) -> Iterator[imaplib.IMAP4]:
    conn = imaplib.IMAP4("localhost", server.ports["imap"], timeout=30)
    try:
        conn.starttls(verifying_tls(server))
        ok(conn.login(user, PASSWORD))
        yield conn
    except BaseException:
        conn.shutdown()
        raise
    conn.logout()


def create_folder(server: ServerThread, user: str, folder: str) -> None:
    with imap(server, user) as conn:
        ok(conn.create(quoted(folder)))


def append(server: ServerThread, user: str, folder: str, messages: Iterable[bytes], flags: str | None = None) -> None:
    with imap(server, user) as conn:
        for message in messages:
            ok(conn.append(quoted(folder), flags, None, message))


FETCH_ITEM = re.compile(rb"^\d+ \(UID (\d+) FLAGS \(([^)]*)\)")


def snapshot(server: ServerThread, user: str, folder: str) -> dict[int, tuple[frozenset[str], bytes]]:
    """UID -> (flags, whole message) of every message in a folder, read without setting \\Seen."""
    with imap(server, user) as conn:
        typ, data = conn.select(quoted(folder), readonly=True)
        assert typ == "OK", (folder, data)
        if data == [b"0"]:
            return {}
        result: dict[int, tuple[frozenset[str], bytes]] = {}
        for item in ok(conn.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")):
            if not isinstance(item, tuple):
                continue
            m = FETCH_ITEM.match(item[0])
            assert m, item[0]
            flags = frozenset(f.decode() for f in m.group(2).split() if f != b"\\Recent")
            result[int(m.group(1))] = (flags, item[1])
        return result


def folder_names(server: ServerThread, user: str) -> set[str]:
    """Decoded names of every folder the server lists for the user."""
    with imap(server, user) as conn:
        names = set()
        for line in ok(conn.list('""', "*")):
            m = re.match(rb'^\(.*?\) (?:"/"|NIL) "?(.*?)"?$', line)
            assert m, line
            names.add(imap_utf7.decode(m.group(1)))
        return names


def subjects(messages: Iterable[bytes]) -> list[str]:
    return sorted(decoded_subject(m) for m in messages)


def decoded_subject(message: bytes) -> str:
    raw = parse(message)["Subject"]
    return str(raw) if raw is not None else ""


def header_text(value: bytes) -> str:
    """An RFC 2047 header value as text, as a mail reader decodes ENVELOPE strings."""
    return str(email.header.make_header(email.header.decode_header(value.decode("ascii"))))


# --- imapclient ------------------------------------------------------------------------------------------


@contextmanager
def imapclient(server: ServerThread, user: str) -> Iterator[IMAPClient]:
    client = IMAPClient("localhost", port=server.ports["imap"], ssl=False, timeout=30)
    try:
        client.starttls(verifying_tls(server))
        client.login(user, PASSWORD)
        yield client
    except BaseException:
        client.shutdown()
        raise
    client.logout()


def wait_for_exists(client: IMAPClient, deadline: float) -> list[tuple]:
    """IDLE responses until an EXISTS arrives or the deadline (time.monotonic) passes."""
    seen: list[tuple] = []
    while (left := deadline - time.monotonic()) > 0:
        seen += client.idle_check(timeout=left)
        if any(len(r) > 1 and r[1] == b"EXISTS" for r in seen):
            break
    return seen


# --- SMTP set-up -----------------------------------------------------------------------------------------


def deliver_all(server: ServerThread, recipient: str, messages: Iterable[bytes],
                sender: str = "sender@outside.example") -> None:
    """Set-up: deliver messages over the MX port in one SMTP session."""
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        for message in messages:
            assert s.sendmail(sender, [recipient], message) == {}


def simple_message(recipient: str, subject_text: str, body: str, sender: str = "sender@outside.example") -> bytes:
    encoded = email.header.Header(subject_text, "utf-8").encode()
    mid = f"<{uuid.uuid4().hex}@outside.example>"
    return (f"From: {sender}\r\nTo: {recipient}\r\nSubject: {encoded}\r\nMessage-ID: {mid}\r\n"
            "Date: Mon, 05 Jan 2026 08:00:00 +0800\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            ).encode("ascii") + body.replace("\n", "\r\n").encode("utf-8")


# --- Maildirs on disk ------------------------------------------------------------------------------------


def maildir_files(folder: Path) -> dict[str, Path]:
    """Message files of one Maildir folder (new/ and cur/), by file name."""
    return {p.name: p for sub in ("new", "cur") if (folder / sub).is_dir() for p in (folder / sub).iterdir()}


def maildir_flags(path: Path) -> str:
    return path.name.rsplit(":2,", 1)[1] if ":2," in path.name else ""


def tree(root: Path) -> dict[str, tuple[str, int]]:
    """Relative path -> (name, size) of every message file under root, to compare two points in time."""
    return {str(p.relative_to(root)): (p.name, p.stat().st_size) for p in root.rglob("*")
            if p.is_file() and p.parent.name in ("new", "cur")}


@contextmanager
def nobody_dir() -> Iterator[Path]:
    """A directory outside pytest's 0700 tmp tree that user nobody can reach (getmail refuses to deliver as root)."""
    base = Path(tempfile.mkdtemp(prefix="dizimail-imap-"))
    base.chmod(0o711)
    try:
        yield base
    finally:
        shutil.rmtree(base)


def make_maildir(path: Path, owner_nobody: bool) -> Path:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True)
    if owner_nobody:
        for p in (path, *path.iterdir()):
            os.chown(p, 65534, -1)
    return path


# --- a terminal, as a person uses a full-screen program ------------------------------------------------


class Terminal:
    """A program in a detached tmux session: type keys, read the screen."""

    def __init__(self, argv: list[str], env: dict[str, str], workdir: Path, width: int = 160,
                 height: int = 40) -> None:
        self.tmux = need("tmux")
        self.socket = f"dizimail-{uuid.uuid4().hex[:12]}"
        conf = workdir / "tmux.conf"
        # Keep the pane after the program exits, so the test can tell "exited" from "never started".
        conf.write_text("set -g remain-on-exit on\nset -g status off\n")
        command = " ".join(_shell_quote(a) for a in ["env", *(f"{k}={v}" for k, v in env.items()), *argv])
        self._tmux("-f", str(conf), "new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), command)
        self.socket_path = Path(self._tmux("display-message", "-p", "#{socket_path}").strip())

    def _tmux(self, *args: str) -> str:
        p = subprocess.run([self.tmux, "-u", "-L", self.socket, *args], capture_output=True, timeout=30,
                           check=False)
        assert p.returncode == 0, (args, p.stderr.decode("utf-8", "replace"))
        return p.stdout.decode("utf-8", "replace")

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t")

    def keys(self, *keys: str) -> None:
        """tmux key names: Enter, C-u, Escape, or single characters."""
        self._tmux("send-keys", "-t", "t", *keys)

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", "t", "-l", text)

    def wait_for(self, pattern: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if re.search(pattern, screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} did not appear within {timeout}s; the screen shows:\n{screen}")
            time.sleep(0.2)

    def exited(self) -> bool:
        return self._tmux("display-message", "-p", "-t", "t", "#{pane_dead}").strip() == "1"

    def wait_exit(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not self.exited():
            if time.monotonic() > deadline:
                raise AssertionError(f"the program did not exit within {timeout}s; the screen shows:\n{self.screen()}")
            time.sleep(0.2)

    def close(self) -> None:
        subprocess.run([self.tmux, "-L", self.socket, "kill-server"], capture_output=True, timeout=30, check=False)
        self.socket_path.unlink(missing_ok=True)


def _shell_quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"
