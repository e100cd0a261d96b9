"""Interop with real IMAP clients: mbsync (isync), offlineimap3, mutt, getmail6 and the imapclient library.

Each test drives the client as a user would and checks what the user sees: the local Maildir the client
wrote, the screen of the mail reader, and the server's state read back with a second, independent client
(imaplib over STARTTLS, or POP3 for the cross-protocol check).
"""

from __future__ import annotations

import base64
import email.header
import os
import re
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from imap_tools import (
    Terminal,
    append,
    create_folder,
    decoded_subject,
    deliver_all,
    folder_names,
    header_text,
    imap,
    imapclient,
    maildir_files,
    maildir_flags,
    make_maildir,
    nobody_dir,
    ok,
    quoted,
    simple_message,
    snapshot,
    subjects,
    tree,
    wait_for_exists,
    wire_name,
)
from interop_tools import Result, cert_file, home_env, maildrop, need, new_user, private_file, run, split_trace

from conftest import PASSWORD, ServerThread

CHINESE_FOLDER = "已发送/2026年"
DEFAULT_FOLDERS = ("INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive")
SYNC_TIMEOUT = 180


def inbox_mail(user: str, count: int) -> tuple[list[bytes], list[str]]:
    titles = [f"第{i}封 message {i}" for i in range(count)]
    return [simple_message(user, t, f"正文第{i}段。\nline two of {i}\n") for i, t in enumerate(titles)], titles


def sent_mail(user: str, count: int) -> tuple[list[bytes], list[str]]:
    titles = [f"已发送的信 {i}" for i in range(count)]
    messages = [simple_message("friend@outside.example", t, f"发出的信 {i}\n", sender=user)
                for i, t in enumerate(titles)]
    return messages, titles


def local_message(subject_text: str, body: str) -> bytes:
    """A message a local program writes into a Maildir: LF line ends, as files on disk have."""
    encoded = email.header.Header(subject_text, "utf-8").encode()
    return (f"From: me@example.test\nTo: friend@outside.example\nSubject: {encoded}\n"
            f"Message-ID: <{uuid.uuid4().hex}@example.test>\nDate: Tue, 06 Jan 2026 09:30:00 +0800\n"
            "MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n\n"
            ).encode("ascii") + body.encode("utf-8")


def unique_maildir_name() -> str:
    return f"{int(time.time())}.P{os.getpid()}Q{uuid.uuid4().hex[:8]}.localhost"


def mark_seen(path: Path) -> Path:
    """What a mail reader does to a Maildir file when the user reads it: move to cur/, add the S flag."""
    name = path.name + "S" if ":2," in path.name else path.name + ":2,S"
    target = path.parent.parent / "cur" / name
    path.rename(target)
    return target


def by_subject(files: dict[str, Path]) -> dict[str, Path]:
    return {decoded_subject(p.read_bytes()): p for p in files.values()}


def server_subjects(state: dict[int, tuple[frozenset[str], bytes]]) -> dict[str, frozenset[str]]:
    return {decoded_subject(message): flags for flags, message in state.values()}


# --- mbsync (isync) --------------------------------------------------------------------------------------


def mbsync_version() -> tuple[int, ...]:
    out = subprocess.run([need("mbsync"), "--version"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"(\d+)\.(\d+)", out)
    assert m, out
    return int(m.group(1)), int(m.group(2))


def mbsyncrc(tmp_path: Path, server: ServerThread, user: str, local: Path, listener: str) -> Path:
    # isync 1.5 renamed SSLType to TLSType; "localhost" is in the certificate's subjectAltName.
    keyword = "TLSType" if mbsync_version() >= (1, 5) else "SSLType"
    mode = "STARTTLS" if listener == "imap" else "IMAPS"
    return private_file(tmp_path / "mbsyncrc", f"""\
IMAPAccount dizimail
Host localhost
Port {server.ports[listener]}
User {user}
Pass {PASSWORD}
{keyword} {mode}
CertificateFile {cert_file(server)}

IMAPStore dizimail-remote
Account dizimail

MaildirStore dizimail-local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel dizimail
Far :dizimail-remote:
Near :dizimail-local:
Patterns *
Create Both
Expunge Both
SyncState *
""")


def mbsync(rc: Path, home: Path) -> Result:
    """One sync with the protocol transcript (-Dn: commands and responses, no message bodies)."""
    return run([need("mbsync"), "-Dn", "-c", str(rc), "dizimail"], env=home_env(home), timeout=SYNC_TIMEOUT)


CHANGING_COMMAND = re.compile(r">>> \d+ (?:UID )?(STORE|APPEND|EXPUNGE|CLOSE|MOVE|COPY|CREATE|DELETE|RENAME)\b")


def changing_commands(transcript: str) -> list[str]:
    """Commands in an mbsync transcript that would change the server (CLOSE expunges)."""
    return [m.group(0) for m in CHANGING_COMMAND.finditer(transcript) if m.group(1) != "CLOSE"]


@pytest.mark.parametrize("listener", ["imap", "imaps"], ids=["starttls", "imaps"])
def test_mbsync_two_way_sync_of_200_messages_and_a_chinese_folder(server: ServerThread, tmp_path: Path,
                                                                   listener: str) -> None:
    user = new_user(server, "mbsync")
    messages, titles = inbox_mail(user, 200)
    deliver_all(server, user, messages)
    create_folder(server, user, CHINESE_FOLDER)
    sent, sent_titles = sent_mail(user, 3)
    append(server, user, CHINESE_FOLDER, sent, r"(\Seen)")
    local = tmp_path / "Mail"
    local.mkdir()
    rc = mbsyncrc(tmp_path, server, user, local, listener)

    # 1. Pull everything: 200 files in INBOX, the Chinese folder (by its modified UTF-7 name) with its 3.
    r = mbsync(rc, tmp_path)
    assert r.rc == 0, r
    assert "AUTHENTICATE PLAIN" in r.out, r
    assert ("STARTTLS" in r.out) == (listener == "imap"), r
    inbox = maildir_files(local / "INBOX")
    assert len(inbox) == 200, r
    assert subjects(p.read_bytes() for p in inbox.values()) == sorted(titles)
    assert all(maildir_flags(p) == "" for p in inbox.values())
    chinese = local / wire_name(CHINESE_FOLDER)
    assert wire_name(CHINESE_FOLDER) == "&XfJT0ZAB-/2026&XnQ-"
    pulled = maildir_files(chinese)
    assert subjects(p.read_bytes() for p in pulled.values()) == sorted(sent_titles)
    assert {maildir_flags(p) for p in pulled.values()} == {"S"}
    for folder in DEFAULT_FOLDERS[1:]:
        assert (local / folder / "cur").is_dir(), folder
        assert maildir_files(local / folder) == {}, folder
    # The local copy is the message the server stores (mbsync keeps the bytes; lines may end in LF).
    server_inbox = snapshot(server, user, "INBOX")
    assert all(flags == frozenset() for flags, _ in server_inbox.values()), "pulling must not set \\Seen"
    stored = {decoded_subject(m): m for _, m in server_inbox.values()}
    # mbsync adds its own X-TUID header line.
    local_copy = re.sub(rb"(?m)^X-TUID: .*\r?\n", b"", by_subject(inbox)["第42封 message 42"].read_bytes())
    assert local_copy.replace(b"\r\n", b"\n") == stored["第42封 message 42"].replace(b"\r\n", b"\n")

    # 2. Change things locally: read one, delete one, write a new message into the Chinese folder.
    local_inbox = by_subject(inbox)
    mark_seen(local_inbox["第7封 message 7"])
    local_inbox["第13封 message 13"].unlink()
    new_local = local_message("本地写的新信", "从本地 Maildir 上传。\n")
    (chinese / "new" / unique_maildir_name()).write_bytes(new_local)
    r = mbsync(rc, tmp_path)
    assert r.rc == 0, r

    state = server_subjects(snapshot(server, user, "INBOX"))
    assert len(state) == 199, r
    assert "第13封 message 13" not in state, "the message deleted locally is still on the server"
    assert state["第7封 message 7"] == {"\\Seen"}, r
    assert [s for s, flags in state.items() if flags] == ["第7封 message 7"]
    remote_chinese = snapshot(server, user, CHINESE_FOLDER)
    assert sorted(server_subjects(remote_chinese)) == sorted([*sent_titles, "本地写的新信"]), r
    [uploaded] = [m for _, m in remote_chinese.values() if decoded_subject(m) == "本地写的新信"]
    assert "从本地 Maildir 上传。".encode() in uploaded
    assert len(maildir_files(local / "INBOX")) == 199

    # 3. Nothing changed on either side: the next sync sends no changes and touches no file.
    files_before = tree(local)
    server_before = {f: snapshot(server, user, f) for f in (*DEFAULT_FOLDERS, CHINESE_FOLDER)}
    r = mbsync(rc, tmp_path)
    assert r.rc == 0, r
    assert changing_commands(r.out) == [], r
    assert tree(local) == files_before
    assert {f: snapshot(server, user, f) for f in (*DEFAULT_FOLDERS, CHINESE_FOLDER)} == server_before


# --- offlineimap3 ----------------------------------------------------------------------------------------


def offlineimaprc(tmp_path: Path, server: ServerThread, user: str, local: Path) -> Path:
    return private_file(tmp_path / "offlineimaprc", f"""\
[general]
accounts = dizimail
metadata = {tmp_path / "offlineimap-meta"}
ui = basic

[Account dizimail]
localrepository = dizimail-local
remoterepository = dizimail-remote
utf8foldernames = yes

[Repository dizimail-local]
type = Maildir
localfolders = {local}

[Repository dizimail-remote]
type = IMAP
remotehost = localhost
remoteport = {server.ports["imaps"]}
remoteuser = {user}
remotepass = {PASSWORD}
ssl = yes
sslcacertfile = {cert_file(server)}
""")


def offlineimap(rc: Path, home: Path) -> Result:
    r = run([need("offlineimap"), "-c", str(rc), "-o", "-u", "basic"], env=home_env(home), timeout=SYNC_TIMEOUT)
    # offlineimap reports many failures (a folder it could not sync) on the console but still exits 0.
    assert r.rc == 0 and "ERROR" not in r.out and "Traceback" not in r.out, r
    return r


def test_offlineimap_pulls_every_folder_including_chinese_and_pushes_changes(server: ServerThread,
                                                                             tmp_path: Path) -> None:
    user = new_user(server, "offlineimap")
    messages, titles = inbox_mail(user, 40)
    deliver_all(server, user, messages)
    create_folder(server, user, CHINESE_FOLDER)
    sent, sent_titles = sent_mail(user, 3)
    append(server, user, CHINESE_FOLDER, sent, r"(\Seen)")
    archived, archived_titles = sent_mail(user, 2)
    append(server, user, "Archive", archived)
    local = tmp_path / "Mail"
    local.mkdir()
    rc = offlineimaprc(tmp_path, server, user, local)

    r = offlineimap(rc, tmp_path)
    # utf8foldernames: local folders carry the decoded name, with offlineimap's "." separator.
    counts = {p.name: len(maildir_files(p)) for p in local.iterdir() if p.is_dir()}
    assert counts == {"INBOX": 40, "已发送": 0, "已发送.2026年": 3, "Archive": 2, "Drafts": 0, "Junk": 0,
                      "Sent": 0, "Trash": 0}, r
    assert subjects(p.read_bytes() for p in maildir_files(local / "INBOX").values()) == sorted(titles)
    assert subjects(p.read_bytes() for p in maildir_files(local / "已发送.2026年").values()) == sorted(sent_titles)
    assert subjects(p.read_bytes() for p in maildir_files(local / "Archive").values()) == sorted(archived_titles)
    assert {maildir_flags(p) for p in maildir_files(local / "已发送.2026年").values()} == {"S"}
    assert all(flags == frozenset() for flags, _ in snapshot(server, user, "INBOX").values())

    # Push back: a message read locally, one deleted, a new message written into the Chinese folder.
    local_inbox = by_subject(maildir_files(local / "INBOX"))
    mark_seen(local_inbox["第5封 message 5"])
    local_inbox["第9封 message 9"].unlink()
    (local / "已发送.2026年" / "new" / unique_maildir_name()).write_bytes(local_message("离线写的信", "离线正文\n"))
    r = offlineimap(rc, tmp_path)
    state = server_subjects(snapshot(server, user, "INBOX"))
    assert [s for s, flags in state.items() if flags] == ["第5封 message 5"], r
    assert state["第5封 message 5"] == {"\\Seen"}
    assert "第9封 message 9" not in state and len(state) == 39, r
    remote_chinese = server_subjects(snapshot(server, user, CHINESE_FOLDER))
    assert sorted(remote_chinese) == sorted([*sent_titles, "离线写的信"]), r

    # A sync with nothing new copies nothing and changes no flag.
    files_before = tree(local)
    r = offlineimap(rc, tmp_path)
    assert "Copy message" not in r.out and "flag" not in r.out.lower(), r
    assert tree(local) == files_before


# --- mutt ------------------------------------------------------------------------------------------------


def muttrc(home: Path, server: ServerThread, user: str) -> Path:
    return private_file(home / ".muttrc", f"""\
set imap_user = "{user}"
set imap_pass = "{PASSWORD}"
set folder = "imaps://localhost:{server.ports["imaps"]}/"
set spoolfile = "+INBOX"
set ssl_force_tls = yes
set ssl_verify_host = yes
set ssl_ca_certificates_file = "{cert_file(server)}"
set certificate_file = "{home / "certificates"}"
set header_cache = ""
set sort = date-sent
set delete = yes
set quit = yes
set move = no
set resolve = no
set confirmappend = no
set charset = "utf-8"
""")


def test_mutt_reads_a_message_and_saves_it_to_archive(server: ServerThread, tmp_path: Path) -> None:
    """A person in mutt opens the message, reads it, saves it to =Archive and quits; it moved on the server."""
    user = new_user(server, "mutt")
    tag = uuid.uuid4().hex[:8]
    target = simple_message(user, f"请归档 {tag}", "这封信要移到归档。\nplease move me\n", sender="Bob <bob@outside.example>")
    others = [simple_message(user, f"留在收件箱 {i}", f"stay {i}\n") for i in range(2)]
    deliver_all(server, user, [target, *others])
    home = tmp_path / "home"
    home.mkdir()
    rc = muttrc(home, server, user)
    term = Terminal([need("mutt"), "-n", "-F", str(rc)], workdir=tmp_path,
                    env={"HOME": str(home), "TERM": "screen", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"})
    try:
        screen = term.wait_for(r"Msgs:3")
        assert f"请归档 {tag}" in screen and "留在收件箱 1" in screen, screen
        term.keys("/")
        term.wait_for("Search for")
        term.type(tag)
        term.keys("Enter")
        term.keys("Enter")
        screen = term.wait_for("please move me")
        assert "这封信要移到归档。" in screen and f"Subject: 请归档 {tag}" in screen, screen
        term.keys("s")
        term.wait_for(r"Save to mailbox")
        term.keys("C-u")
        term.type("=Archive")
        term.keys("Enter")
        term.keys("i")  # leave the pager (resolve=no keeps it on the saved message)
        screen = term.wait_for(r"Msgs:3 .*Del:1")
        assert re.search(r"\bD\b.*请归档", screen), screen
        term.keys("q")
        term.wait_exit()
        screen = term.screen()
    finally:
        term.close()

    inbox = snapshot(server, user, "INBOX")
    assert sorted(server_subjects(inbox)) == ["留在收件箱 0", "留在收件箱 1"], screen
    archive = snapshot(server, user, "Archive")
    [(flags, message)] = archive.values()
    assert decoded_subject(message) == f"请归档 {tag}"
    assert "\\Seen" in flags, flags
    assert split_trace(message)[1] == target


# --- getmail6 over IMAP ----------------------------------------------------------------------------------


def getmail_imap(workdir: Path, maildir: Path, server: ServerThread, user: str, *, delete: bool) -> Result:
    rc = private_file(workdir / "getmailrc", f"""\
[retriever]
type = SimpleIMAPSSLRetriever
server = localhost
port = {server.ports["imaps"]}
username = {user}
password = {PASSWORD}
ca_certs = {cert_file(server)}
mailboxes = ("INBOX",)

[destination]
type = Maildir
path = {maildir}/
{"user = nobody" if os.geteuid() == 0 else ""}

[options]
verbose = 2
read_all = false
delete = {str(delete).lower()}
""")
    return run([need("getmail6", "getmail"), "--getmaildir", str(workdir), "--rcfile", str(rc)],
               env=home_env(workdir))


@pytest.mark.parametrize("delete", [False, True], ids=["keep", "delete"])
def test_getmail_imap_retrieves_inbox_into_maildir(server: ServerThread, tmp_path: Path, delete: bool) -> None:
    user = new_user(server, "getmail")
    messages, titles = inbox_mail(user, 3)
    deliver_all(server, user, messages)
    workdir = tmp_path / "getmail"
    workdir.mkdir()
    with nobody_dir() as base:
        maildir = make_maildir(base / "Maildir", owner_nobody=os.geteuid() == 0)
        r = getmail_imap(workdir, maildir, server, user, delete=delete)
        assert r.rc == 0, r
        assert "3 messages" in r.out and "retrieved" in r.out, r
        got = maildir_files(maildir)
        assert subjects(p.read_bytes() for p in got.values()) == sorted(titles)
        for p in got.values():
            text = p.read_bytes().decode("utf-8")
            assert "正文第" in text and "line two of" in text

        remaining = snapshot(server, user, "INBOX")
        assert len(remaining) == (0 if delete else 3), r

        # Second run: nothing new. With keep, getmail remembers what it fetched; with delete, nothing is left.
        r = getmail_imap(workdir, maildir, server, user, delete=delete)
        assert r.rc == 0, r
        assert "0 messages" in r.out, r
        assert maildir_files(maildir) == got

        # A new message arrives: only it is retrieved.
        deliver_all(server, user, [simple_message(user, "后来的信", "新到的\n")])
        r = getmail_imap(workdir, maildir, server, user, delete=delete)
        assert r.rc == 0, r
        assert "1 messages" in r.out, r
        new = [p for name, p in maildir_files(maildir).items() if name not in got]
        assert subjects(p.read_bytes() for p in new) == ["后来的信"]
        assert len(snapshot(server, user, "INBOX")) == (0 if delete else 4)


# --- imapclient ------------------------------------------------------------------------------------------

REPORT_SUBJECT = "电厂运行日报"
REPORT_TEXT = "今天电厂发电量正常。\r\n二号机组检修完毕。\r\n"
ATTACHMENT = bytes(range(256)) * 8


def gb2312_report(recipient: str) -> tuple[bytes, bytes, bytes]:
    """A multipart/mixed message: GB2312 encoded-word Subject, GB2312 8-bit text, base64 attachment.

    Returns (message, text part body, attachment part body as sent)."""
    boundary = f"=_dizimail_{uuid.uuid4().hex}"
    # Written as Chinese mailers write it (Python's own encoder would label the charset "euc-gb2312-cn").
    subject = "=?GB2312?B?" + base64.b64encode(REPORT_SUBJECT.encode("gb2312")).decode("ascii") + "?="
    text = REPORT_TEXT.encode("gb2312")
    b64 = base64.encodebytes(ATTACHMENT).replace(b"\n", b"\r\n")
    message = (
        f"From: =?GB2312?B?{base64.b64encode('王工'.encode('gb2312')).decode()}?= <wang@plant.example>\r\n"
        f"To: {recipient}\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: <report-{uuid.uuid4().hex}@plant.example>\r\n"
        "Date: Mon, 05 Jan 2026 08:00:00 +0800\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n'
        "\r\n"
        "This is a multi-part message in MIME format.\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/plain; charset=gb2312\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
    ).encode("ascii") + text + (
        f"\r\n--{boundary}\r\n"
        'Content-Type: application/octet-stream; name="report.bin"\r\n'
        'Content-Disposition: attachment; filename="report.bin"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
    ).encode("ascii") + b64 + f"--{boundary}--\r\n".encode("ascii")
    return message, text, b64


def test_imapclient_envelope_bodystructure_and_body_of_gb2312_multipart(server: ServerThread) -> None:
    user = new_user(server, "imapclient")
    message, text, b64 = gb2312_report(user)
    deliver_all(server, user, [message])
    with imapclient(server, user) as c:
        selected = c.select_folder("INBOX")
        assert selected[b"EXISTS"] == 1
        [uid] = c.search()
        data = c.fetch([uid], ["ENVELOPE", "BODYSTRUCTURE", "FLAGS", "BODY.PEEK[]", "RFC822.SIZE"])[uid]

        envelope = data[b"ENVELOPE"]
        assert header_text(envelope.subject) == REPORT_SUBJECT
        [sender] = envelope.from_
        assert header_text(sender.name) == "王工"
        assert (sender.mailbox, sender.host) == (b"wang", b"plant.example")
        assert envelope.date is not None and envelope.date.year == 2026

        structure = data[b"BODYSTRUCTURE"]
        assert structure.is_multipart
        parts, subtype = structure[0], structure[1]
        assert subtype.lower() == b"mixed"
        assert len(parts) == 2
        text_part, attachment = parts
        assert (text_part[0].lower(), text_part[1].lower()) == (b"text", b"plain")
        assert [v.lower() for v in text_part[2]] == [b"charset", b"gb2312"]
        assert text_part[5].lower() == b"8bit"
        assert text_part[6] == len(text)
        assert text_part[7] == 2  # lines
        assert (attachment[0].lower(), attachment[1].lower()) == (b"application", b"octet-stream")
        assert [v.lower() for v in attachment[2]] == [b"name", b"report.bin"]
        assert attachment[5].lower() == b"base64"
        assert attachment[6] == len(b64) - 2  # the CRLF before the boundary belongs to the boundary

        assert set(data[b"FLAGS"]) - {b"\\Recent"} == set(), "BODY.PEEK must not set \\Seen"
        whole = data[b"BODY[]"]
        assert split_trace(whole)[1] == message
        assert data[b"RFC822.SIZE"] == len(whole)

        # The parts themselves, as a mail reader would fetch them to show text and save the attachment.
        parts_data = c.fetch([uid], ["BODY.PEEK[1]", "BODY.PEEK[2]", "BODY.PEEK[2.MIME]"])[uid]
        assert parts_data[b"BODY[1]"].decode("gb2312") == REPORT_TEXT
        assert base64.b64decode(parts_data[b"BODY[2]"]) == ATTACHMENT
        assert b"filename=\"report.bin\"" in parts_data[b"BODY[2.MIME]"]
        assert set(c.get_flags([uid])[uid]) - {b"\\Recent"} == set()


def test_imapclient_search_chinese_copy_move_flags_and_status(server: ServerThread) -> None:
    user = new_user(server, "imapclient")
    report, _, _ = gb2312_report(user)
    deliver_all(server, user, [simple_message(user, "无关", "nothing here\n"), report,
                               simple_message(user, "另一封", "电厂 in a UTF-8 body\n")])
    with imapclient(server, user) as c:
        c.select_folder("INBOX")
        uids = c.search()
        assert len(uids) == 3
        first, second, third = uids
        assert c.search(["TEXT", "电厂"], charset="UTF-8") == [second, third]
        assert c.search(["SUBJECT", "运行日报"], charset="UTF-8") == [second]
        assert c.search(["SUBJECT", "无关"], charset="UTF-8") == [first]

        flags = c.add_flags([first], [b"\\Flagged", b"$Important"])[first]
        assert set(flags) - {b"\\Recent"} == {b"\\Flagged", b"$Important"}
        assert c.search(["FLAGGED"]) == [first]
        assert c.search(["UNFLAGGED"]) == [second, third]

        c.copy([second], "Archive")
        status = c.folder_status("Archive", [b"MESSAGES", b"UNSEEN", b"UIDNEXT"])
        assert status[b"MESSAGES"] == 1 and status[b"UNSEEN"] == 1 and status[b"UIDNEXT"] == 2

        c.move([first], "Trash")
        assert c.search() == [second, third]
        trash = c.folder_status("Trash", [b"MESSAGES"])
        assert trash[b"MESSAGES"] == 1
        inbox = c.folder_status("INBOX", [b"MESSAGES", b"UNSEEN"])
        assert inbox == {b"MESSAGES": 2, b"UNSEEN": 2}

        c.select_folder("Trash")
        [moved] = c.search()
        data = c.fetch([moved], ["FLAGS", "ENVELOPE"])[moved]
        assert set(data[b"FLAGS"]) - {b"\\Recent"} == {b"\\Flagged", b"$Important"}, "flags move with it"
        assert header_text(data[b"ENVELOPE"].subject) == "无关"
        c.select_folder("Archive")
        [archived] = c.search()
        assert header_text(c.fetch([archived], ["ENVELOPE"])[archived][b"ENVELOPE"].subject) == REPORT_SUBJECT


def test_imapclient_chinese_folder_round_trip(server: ServerThread) -> None:
    user = new_user(server, "imapclient")
    with imapclient(server, user) as c:
        c.create_folder("已发送/测试")
        names = {name for _, _, name in c.list_folders()}
        assert {"已发送", "已发送/测试", *DEFAULT_FOLDERS} <= names, names
        [(flags, delimiter, _)] = [f for f in c.list_folders() if f[2] == "已发送/测试"]
        assert delimiter == b"/"
        assert c.folder_exists("已发送/测试")

        appended = simple_message(user, "测试文件夹里的信", "内容\n")
        c.append("已发送/测试", appended, flags=[b"\\Seen"])
        status = c.folder_status("已发送/测试", [b"MESSAGES", b"UNSEEN"])
        assert status == {b"MESSAGES": 1, b"UNSEEN": 0}
        info = c.select_folder("已发送/测试")
        assert info[b"EXISTS"] == 1
        [uid] = c.search()
        assert c.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"] == appended
        c.unselect_folder()

        c.rename_folder("已发送/测试", "已发送/测试二")
        assert {"已发送/测试二"} <= {name for _, _, name in c.list_folders()}
        assert c.folder_status("已发送/测试二", [b"MESSAGES"])[b"MESSAGES"] == 1

    # Another client sees the same folder under its modified UTF-7 wire name.
    assert "已发送/测试二" in folder_names(server, user)
    with imap(server, user) as conn:
        listing = b"\n".join(ok(conn.list('""', "*")))
        assert wire_name("已发送/测试二").encode() in listing, listing
        assert wire_name("已发送/测试二") == "&XfJT0ZAB-/&bUuL1U6M-"
        typ, data = conn.select(quoted("已发送/测试二"))
        assert typ == "OK" and data == [b"1"], data

    with imapclient(server, user) as c:
        c.delete_folder("已发送/测试二")
        assert "已发送/测试二" not in {name for _, _, name in c.list_folders()}


# --- IDLE and the same message over SMTP, IMAP and POP3 ------------------------------------------------


def test_imapclient_idle_gets_exists_within_a_second_of_smtp_delivery(server: ServerThread) -> None:
    user = new_user(server, "idle")
    deliver_all(server, user, [simple_message(user, "已有的信", "old\n")])
    with imapclient(server, user) as c:
        c.select_folder("INBOX")
        c.idle()
        try:
            assert c.idle_check(timeout=0.3) == []  # nothing happens while nothing arrives
            deliver_all(server, user, [simple_message(user, "新到的信", "new\n")])
            delivered = time.monotonic()
            responses = wait_for_exists(c, delivered + 1.0)
            elapsed = time.monotonic() - delivered
        finally:
            text, more = c.idle_done()
        assert (2, b"EXISTS") in responses + more, (responses, more, text)
        assert elapsed <= 1.0, f"EXISTS came {elapsed:.2f}s after the SMTP transaction ended"
        [newest] = c.search(["SUBJECT", "新到的信"], charset="UTF-8")
        assert c.fetch([newest], ["FLAGS"])[newest][b"FLAGS"] in ((), (b"\\Recent",))


def test_smtp_message_seen_by_idle_marked_seen_over_imap_and_served_byte_exact_by_pop3(
        server: ServerThread) -> None:
    user = new_user(server, "cross")
    report, _, _ = gb2312_report(user)
    with imapclient(server, user) as c:
        c.select_folder("INBOX")
        c.idle()
        try:
            sender = threading.Thread(target=deliver_all, args=(server, user, [report]))
            started = time.monotonic()
            sender.start()
            sender.join(30)
            responses = wait_for_exists(c, started + 2.0)
            delivered_after = time.monotonic() - started
        finally:
            c.idle_done()
        assert (1, b"EXISTS") in responses, responses
        assert delivered_after <= 2.0  # SMTP transaction plus at most a second until EXISTS

        [uid] = c.search()
        c.add_flags([uid], [b"\\Seen"])
        data = c.fetch([uid], ["FLAGS", "BODY.PEEK[]", "RFC822.SIZE"])[uid]
        assert b"\\Seen" in data[b"FLAGS"]
        over_imap = data[b"BODY[]"]
        assert split_trace(over_imap)[1] == report

    with imapclient(server, user) as c:
        c.select_folder("INBOX", readonly=True)
        assert c.search(["SEEN"]) == [uid]

    # POP3 (STLS) serves the very same bytes; its LIST size matches IMAP's RFC822.SIZE.
    [over_pop3] = maildrop(server, user)
    assert over_pop3 == over_imap
    assert len(over_pop3) == data[b"RFC822.SIZE"]
    assert split_trace(over_pop3)[1] == report
