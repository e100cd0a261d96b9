"""Interop with real Debian mail clients: swaks, msmtp, fetchmail, getmail6.

Every test drives the client program the way a user or admin would and checks what they would see:
the client's exit status and transcript, the mail in the maildrop (read back over POP3), and the queue.
"""

from __future__ import annotations

import base64
import os
import shutil
import smtplib
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from interop_tools import (
    cert_file,
    delete_message,
    deliver,
    home_env,
    maildrop,
    need,
    new_user,
    parse,
    private_file,
    queue_list,
    queue_rows,
    queued_id,
    remote_address,
    run,
    split_trace,
    stat,
    subject,
    swaks,
    text_body,
    uidls,
    utf8_message,
)

from conftest import PASSWORD, ServerThread

CHINESE_SUBJECT = "中文测试：你好，世界"
CHINESE_BODY = "你好，世界！\n这是一封测试邮件。\n"


def encoded_word(text: str) -> str:
    return "=?UTF-8?B?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="


# --- swaks -----------------------------------------------------------------------------------------------


def test_swaks_mx_delivery_arrives_byte_exact(server: ServerThread, user: str, tmp_path: Path) -> None:
    """swaks sends a raw file (8-bit UTF-8 body, dot-stuffed line) to the MX; POP3 returns exactly it."""
    sender = "zhang.san@outside.example"
    original = (
        f"From: {encoded_word('张三')} <{sender}>\r\n"
        f"To: {user}\r\n"
        f"Subject: {encoded_word(CHINESE_SUBJECT)}\r\n"
        "Message-ID: <interop-1@outside.example>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=UTF-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        "你好，世界！\r\n"
        ".这一行以点开头\r\n"
        "\r\n"
        "  trailing space and tab \t\r\n"
        "最后一行\r\n"
    ).encode()
    # --no-data-fixup sends the file verbatim, so the file carries its own dot-stuffing and final dot.
    wire = original.replace(b"\r\n.", b"\r\n..") + b"."
    data = tmp_path / "message.eml"
    data.write_bytes(wire)

    r = swaks(server, "smtp", "--from", sender, "--to", user, "--data", str(data), "--no-data-fixup")
    assert r.rc == 0, r
    assert "250 2.0.0" in r.stdout, r

    [message] = maildrop(server, user)
    trace, content = split_trace(message)
    assert content == original
    assert trace.startswith(f"Return-Path: <{sender}>\r\nDelivered-To: {user}\r\nReceived: ".encode())
    assert subject(message) == CHINESE_SUBJECT
    assert parse(message)["From"].addresses[0].display_name == "张三"
    assert text_body(message) == "你好，世界！\r\n.这一行以点开头\r\n\r\n  trailing space and tab \t\r\n最后一行\r\n"


def test_swaks_header_and_body_options_with_chinese(server: ServerThread, user: str) -> None:
    """The everyday swaks invocation: --header with an encoded-word Subject, --body with UTF-8 text."""
    r = swaks(server, "smtp", "--from", "li.si@outside.example", "--to", user,
              "--header", f"Subject: {encoded_word(CHINESE_SUBJECT)}",
              "--add-header", "Content-Type: text/plain; charset=UTF-8",
              "--body", "这是正文。")
    assert r.rc == 0, r
    [message] = maildrop(server, user)
    assert subject(message) == CHINESE_SUBJECT
    assert f"Subject: {encoded_word(CHINESE_SUBJECT)}\r\n".encode() in message
    assert "\r\n\r\n这是正文。\r\n".encode() in message
    assert text_body(message).startswith("这是正文。\r\n")


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_swaks_submission_starttls_auth(server: ServerThread, user: str, mechanism: str) -> None:
    recipient = new_user(server)
    tag = uuid.uuid4().hex
    r = swaks(server, "submission", "--tls", "--auth", mechanism, "--auth-user", user,
              "--auth-password", PASSWORD, "--from", user, "--to", recipient,
              "--header", f"Subject: submitted {mechanism} {tag}")
    assert r.rc == 0, r
    assert "220 2.0.0" in r.stdout and "TLS started" in r.stdout, r
    assert "235 2.7.0" in r.stdout, r
    [message] = maildrop(server, recipient)
    assert subject(message) == f"submitted {mechanism} {tag}"
    assert parse(message)["From"] == user


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_swaks_submission_wrong_password_535(server: ServerThread, user: str, mechanism: str) -> None:
    recipient = new_user(server)
    r = swaks(server, "submission", "--tls", "--auth", mechanism, "--auth-user", user,
              "--auth-password", "not-the-password", "--from", user, "--to", recipient)
    assert r.rc != 0, r
    assert "535 5.7.8" in r.out, r
    assert "MAIL FROM" not in r.stdout, r
    assert stat(server, recipient) == 0


def test_swaks_submission_auth_refused_without_tls(server: ServerThread, user: str) -> None:
    """Before STARTTLS the submission port neither advertises AUTH nor accepts it."""
    recipient = new_user(server)
    r = swaks(server, "submission", "--auth", "PLAIN", "--auth-user", user, "--auth-password", PASSWORD,
              "--from", user, "--to", recipient)
    assert r.rc != 0, r
    assert "250-STARTTLS" in r.stdout, r
    assert "AUTH" not in r.stdout.split("EHLO", 1)[1], r
    assert "did not advertise authentication" in r.out, r
    assert stat(server, recipient) == 0

    # A client that sends AUTH anyway (what swaks would do if it ignored EHLO) gets an encryption refusal.
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=30) as s:
        s.ehlo("client.example.net")
        token = base64.b64encode(f"\0{user}\0{PASSWORD}".encode()).decode()
        code, text = s.docmd("AUTH", f"PLAIN {token}")
        assert code in (538, 503), (code, text)
        assert s.docmd("MAIL", f"FROM:<{user}>")[0] == 530


def test_swaks_submission_without_auth_refused(server: ServerThread, user: str) -> None:
    recipient = new_user(server)
    r = swaks(server, "submission", "--tls", "--from", user, "--to", recipient)
    assert r.rc != 0, r
    assert "530 5.7.0" in r.out, r
    assert stat(server, recipient) == 0


def test_swaks_submission_foreign_sender_refused(server: ServerThread, user: str) -> None:
    """An authenticated user cannot send as somebody else."""
    other = new_user(server)
    r = swaks(server, "submission", "--tls", "--auth", "LOGIN", "--auth-user", user,
              "--auth-password", PASSWORD, "--from", other, "--to", other)
    assert r.rc != 0, r
    assert "235 2.7.0" in r.stdout, r
    assert "553 5.7.1" in r.out, r
    assert stat(server, other) == 0


def test_swaks_relay_refused_on_mx(server: ServerThread) -> None:
    target = remote_address("relay")
    r = swaks(server, "smtp", "--from", "spammer@outside.example", "--to", target)
    assert r.rc != 0, r
    assert "554 5.7.1" in r.out, r
    assert "DATA" not in r.stdout.split("554 5.7.1", 1)[1], r
    assert target not in queue_list(server)


def test_swaks_unknown_local_user_550(server: ServerThread) -> None:
    r = swaks(server, "smtp", "--from", "someone@outside.example",
              "--to", f"nobody-{uuid.uuid4().hex[:8]}@example.test")
    assert r.rc != 0, r
    assert "550 5.1.1" in r.out, r


def test_swaks_smtps_implicit_tls(server: ServerThread, user: str) -> None:
    recipient = new_user(server)
    r = swaks(server, "smtps", "--tlsc", "--auth", "PLAIN", "--auth-user", user, "--auth-password", PASSWORD,
              "--from", user, "--to", recipient, "--header", f"Subject: {encoded_word('隐式TLS')}",
              "--add-header", "Content-Type: text/plain; charset=UTF-8", "--body", "通过SMTPS发送")
    assert r.rc == 0, r
    assert "TLS started" in r.stdout, r
    assert "STARTTLS" not in r.stdout, r
    [message] = maildrop(server, recipient)
    assert subject(message) == "隐式TLS"
    assert text_body(message).startswith("通过SMTPS发送")


# --- msmtp -----------------------------------------------------------------------------------------------


def msmtprc(tmp_path: Path, server: ServerThread, user: str, *, listener: str,
            password: str = PASSWORD) -> Path:
    starttls = "on" if listener == "submission" else "off"
    return private_file(tmp_path / "msmtprc", f"""\
defaults
logfile {tmp_path / "msmtp.log"}

account default
host 127.0.0.1
port {server.ports[listener]}
from {user}
auth on
user {user}
password {password}
tls on
tls_starttls {starttls}
tls_trust_file {cert_file(server)}
""")


def msmtp(rc: Path, message: bytes, *recipients: str) -> tuple[int, str]:
    """msmtp reads the message on stdin, as when a mail user agent pipes to it."""
    r = run([need("msmtp"), f"--file={rc}", "-v", "--", *recipients], input=message)
    return r.rc, str(r)


@pytest.mark.parametrize("listener", ["submission", "smtps"])
def test_msmtp_local_delivery_and_remote_queued(server: ServerThread, user: str, tmp_path: Path,
                                                listener: str) -> None:
    local, remote = new_user(server), remote_address()
    rc = msmtprc(tmp_path, server, user, listener=listener)
    message = utf8_message(f"{local}, {remote}", CHINESE_SUBJECT, CHINESE_BODY, sender=user)
    code, transcript = msmtp(rc, message, local, remote)
    assert code == 0, transcript
    log = (tmp_path / "msmtp.log").read_text()
    assert "exitcode=EX_OK" in log, log

    [received] = maildrop(server, local)
    assert subject(received) == CHINESE_SUBJECT
    assert text_body(received) == CHINESE_BODY.replace("\n", "\r\n")
    assert split_trace(received)[1].endswith(CHINESE_BODY.replace("\n", "\r\n").encode())

    rows = queue_rows(server, queued_id(log))
    assert rows, queue_list(server)
    assert rows[0][3] == f"<{user}>"
    assert [row[4] for row in rows] == [remote], rows


def test_msmtp_wrong_password(server: ServerThread, user: str, tmp_path: Path) -> None:
    local = new_user(server)
    rc = msmtprc(tmp_path, server, user, listener="submission", password="not-the-password")
    code, transcript = msmtp(rc, utf8_message(local, "x", "y\n", sender=user), local)
    assert code != 0, transcript
    assert "535 5.7.8" in transcript, transcript
    assert stat(server, local) == 0


# --- fetchmail -------------------------------------------------------------------------------------------


def fetchmail(tmp_path: Path, server: ServerThread, user: str, *, listener: str, keep: bool,
              password: str = PASSWORD, tls: bool = True) -> tuple[int, str, list[bytes]]:
    """Run fetchmail once; returns exit status, transcript and the messages its MDA received (in order)."""
    home = tmp_path / "fetchmail-home"
    out = tmp_path / "fetched"
    home.mkdir(exist_ok=True)
    out.mkdir(exist_ok=True)
    if listener == "pop3s":
        security = f"ssl sslcertck sslcertfile {cert_file(server)}"
    elif tls:
        security = f"sslproto 'tls1.2+' sslcertck sslcertfile {cert_file(server)}"
    else:
        security = "sslproto ''"
    # "localhost" is in the certificate's subjectAltName (fetchmail does not match IP addresses).
    rc = private_file(home / ".fetchmailrc", f"""\
poll localhost service {server.ports[listener]} protocol pop3 auth password
  user "{user}" password "{password}"
  {security}
  {"keep" if keep else "nokeep"}
  mda "cat > $(mktemp {out}/msg.$(date +%s%N).XXXXXX)"
""")
    before = set(out.iterdir())
    r = run([need("fetchmail"), "--nodetach", "--nosyslog", "-v", "-f", str(rc),
             "--pidfile", str(home / "pid"), "-i", str(home / "fetchids")], env=home_env(home))
    fetched = sorted(set(out.iterdir()) - before)
    return r.rc, str(r), [p.read_bytes() for p in fetched]


def two_messages(server: ServerThread, user: str) -> list[tuple[str, str]]:
    mails = [(f"{CHINESE_SUBJECT} 1", "第一封信\n"), (f"{CHINESE_SUBJECT} 2", "第二封信\n.点开头的行\n")]
    for subj, body in mails:
        deliver(server, user, utf8_message(user, subj, body))
    return mails


@pytest.mark.parametrize("listener", ["pop3", "pop3s"])
def test_fetchmail_keep_leaves_messages_and_remembers_uidl(server: ServerThread, user: str, tmp_path: Path,
                                                           listener: str) -> None:
    mails = two_messages(server, user)
    code, transcript, fetched = fetchmail(tmp_path, server, user, listener=listener, keep=True)
    assert code == 0, transcript
    if listener == "pop3":
        assert "STLS" in transcript and "upgrade to TLS succeeded" in transcript, transcript
    assert "2 messages" in transcript, transcript
    # The MDA's file names (a clock reading each) are the only order we see, and a busy machine has once
    # shown them swapped: what is checked is that both arrive whole (POP3's order: tests/protocol).
    fetched.sort(key=subject)
    assert [subject(m) for m in fetched] == [s for s, _ in mails]
    # fetchmail hands the MDA LF line ends; the 8-bit body must be intact and dot-unstuffed.
    assert [text_body(m) for m in fetched] == [b for _, b in mails]
    assert stat(server, user) == 2

    # Second poll: same UIDLs, so fetchmail finds nothing new (exit status 1 = no mail).
    code, transcript, fetched = fetchmail(tmp_path, server, user, listener=listener, keep=True)
    assert code == 1, transcript
    assert fetched == []
    assert stat(server, user) == 2


@pytest.mark.parametrize("listener", ["pop3", "pop3s"])
def test_fetchmail_without_keep_deletes(server: ServerThread, user: str, tmp_path: Path,
                                        listener: str) -> None:
    mails = two_messages(server, user)
    code, transcript, fetched = fetchmail(tmp_path, server, user, listener=listener, keep=False)
    assert code == 0, transcript
    fetched.sort(key=subject)
    assert [subject(m) for m in fetched] == [s for s, _ in mails]
    assert [text_body(m) for m in fetched] == [b for _, b in mails]
    assert "flushed" in transcript and "not flushed" not in transcript, transcript
    assert stat(server, user) == 0


def test_fetchmail_wrong_password(server: ServerThread, user: str, tmp_path: Path) -> None:
    two_messages(server, user)
    code, transcript, fetched = fetchmail(tmp_path, server, user, listener="pop3", keep=False,
                                          password="not-the-password")
    assert code == 3, transcript  # fetchmail: authentication failure
    assert "-ERR" in transcript, transcript
    assert fetched == []
    assert stat(server, user) == 2


def test_fetchmail_plaintext_login_refused(server: ServerThread, user: str, tmp_path: Path) -> None:
    """With TLS switched off in fetchmail, the server refuses the cleartext password."""
    two_messages(server, user)
    code, transcript, fetched = fetchmail(tmp_path, server, user, listener="pop3", keep=False, tls=False)
    assert code == 3, transcript
    assert "-ERR" in transcript, transcript
    assert "PASS" not in transcript, transcript
    assert fetched == []
    assert stat(server, user) == 2


# --- getmail6 --------------------------------------------------------------------------------------------


class Getmail:
    """A getmail6 setup: --getmaildir (remembers UIDLs), an rc file and a Maildir destination."""

    def __init__(self, tmp_path: Path, tmp_maildir: Path, server: ServerThread, user: str) -> None:
        self.server, self.user = server, user
        self.dir = tmp_path / "getmail"
        self.dir.mkdir()
        self.maildir = tmp_maildir
        for sub in ("cur", "new", "tmp"):
            (self.maildir / sub).mkdir(parents=True)
        # getmail refuses Maildir delivery as root; then deliver as nobody, as its docs recommend.
        self.deliver_as = ""
        if os.geteuid() == 0:
            self.deliver_as = "user = nobody\n"
            for p in (self.maildir, *self.maildir.iterdir()):
                os.chown(p, 65534, -1)

    def run(self, *, delete: bool, read_all: bool) -> tuple[int, str]:
        rc = private_file(self.dir / "getmailrc", f"""\
[retriever]
type = SimplePOP3SSLRetriever
server = localhost
port = {self.server.ports["pop3s"]}
username = {self.user}
password = {PASSWORD}
ca_certs = {cert_file(self.server)}

[destination]
type = Maildir
path = {self.maildir}/
{self.deliver_as}
[options]
verbose = 2
read_all = {str(read_all).lower()}
delete = {str(delete).lower()}
""")
        r = run([need("getmail6", "getmail"), "--getmaildir", str(self.dir), "--rcfile", str(rc)],
                env=home_env(self.dir))
        return r.rc, str(r)

    def messages(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in (self.maildir / "new").iterdir()}


@pytest.fixture
def tmp_maildir(tmp_path: Path) -> Iterator[Path]:
    """A Maildir outside pytest's 0700 tmp tree when delivery has to happen as another user."""
    if os.geteuid() != 0:
        yield tmp_path / "Maildir"
        return
    base = Path(tempfile.mkdtemp(prefix="dizimail-getmail-"))
    base.chmod(0o711)
    try:
        yield base / "Maildir"
    finally:
        shutil.rmtree(base)


def test_getmail_pop3s_keep_and_uidl(server: ServerThread, user: str, tmp_path: Path,
                                     tmp_maildir: Path) -> None:
    mails = two_messages(server, user)
    gm = Getmail(tmp_path, tmp_maildir, server, user)
    code, transcript = gm.run(delete=False, read_all=False)
    assert code == 0, transcript
    assert "2 messages" in transcript and "retrieved" in transcript, transcript
    first = gm.messages()
    assert sorted(subject(m) for m in first.values()) == sorted(s for s, _ in mails)
    assert sorted(text_body(m) for m in first.values()) == sorted(b for _, b in mails)
    assert stat(server, user) == 2
    ids_before = uidls(server, user)

    # Nothing new: the UIDLs getmail remembered are still the server's.
    code, transcript = gm.run(delete=False, read_all=False)
    assert code == 0, transcript
    assert "0 messages" in transcript, transcript
    assert gm.messages() == first

    # A third message arrives and another client deletes the first: UIDLs of the rest must not shift.
    deliver(server, user, utf8_message(user, "第三封", "新的一封\n"))
    delete_message(server, user, 1)
    assert uidls(server, user)[0] == ids_before[1]
    code, transcript = gm.run(delete=False, read_all=False)
    assert code == 0, transcript
    new = {k: v for k, v in gm.messages().items() if k not in first}
    assert [subject(m) for m in new.values()] == ["第三封"], transcript
    assert stat(server, user) == 2


def test_getmail_pop3s_delete(server: ServerThread, user: str, tmp_path: Path, tmp_maildir: Path) -> None:
    mails = two_messages(server, user)
    gm = Getmail(tmp_path, tmp_maildir, server, user)
    code, transcript = gm.run(delete=True, read_all=True)
    assert code == 0, transcript
    got = gm.messages()
    assert sorted(subject(m) for m in got.values()) == sorted(s for s, _ in mails)
    assert sorted(text_body(m) for m in got.values()) == sorted(b for _, b in mails)
    assert stat(server, user) == 0

    code, transcript = gm.run(delete=True, read_all=True)
    assert code == 0, transcript
    assert gm.messages() == got
