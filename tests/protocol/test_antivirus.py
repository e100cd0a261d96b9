"""Virus scanning with a real clamd (issue #10) and signatures generated here: infected mail is refused at
DATA whoever sends it, archives are looked into, and while clamd is down mail is tempfailed, never taken
unscanned; the client's retry then delivers it once."""

from __future__ import annotations

import base64
import contextlib
import email
import email.header
import io
import json
import os
import signal
import socket
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator

import dkim
import pytest

from conftest import PASSWORD, ServerThread, dizimail_cli, start_server, write_config
from helpers import add_route, fetch_all, imap_login, send_data, submit, wait_for
from peers import EICAR, MARKER, ClamdPeer, SmtpSinkPeer, free_port
from processes import ServerProcess


@pytest.fixture(scope="module")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClamdPeer]:
    with ClamdPeer(tmp_path_factory.mktemp("clamd"), free_port()) as peer:
        yield peer


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, clamd: ClamdPeer) -> Iterator[ServerThread]:
    srv = start_server(tmp_path_factory.mktemp("av"), extra=f'\n[antivirus]\nclamd = "{clamd.address}"\ntimeout = "10s"\n')
    yield srv
    srv.stop()


def with_attachment(name: str, payload: bytes, subject: str = "attached") -> bytes:
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    return (f"From: someone@example.org\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=xyz\r\n\r\n--xyz\r\nContent-Type: text/plain\r\n\r\n"
            f"see the attachment\r\n--xyz\r\nContent-Type: application/octet-stream; name={name}\r\n"
            f"Content-Disposition: attachment; filename={name}\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            ).encode() + encoded + b"--xyz--\r\n"


def nested_archive(depth: int) -> bytes:
    """MARKER in a text file, zipped, the zip in a tar.gz, that in a zip ... ``depth`` archives deep."""
    data, name = b"quarterly figures " + MARKER + b" end", "figures.txt"
    for level in range(depth):
        out = io.BytesIO()
        if level % 2 == 0:
            with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr(name, data)
            name = f"level{level}.zip"
        else:
            with tarfile.open(fileobj=out, mode="w:gz") as t:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
            name = f"level{level}.tar.gz"
        data = out.getvalue()
    return data


def deliver(node: ServerThread, rcpt: str, data: bytes) -> tuple[int, str]:
    return send_data(node, "127.0.0.1", rcpt, data)


def test_infected_mail_is_refused_naming_the_virus(node):
    user = node.add_user("av1")
    code, text = deliver(node, user, with_attachment("eicar.com", EICAR))
    assert code == 554 and "5.7.1" in text and "Dizimail-Test.EICAR" in text, (code, text)
    assert deliver(node, user, with_attachment("report.pdf", b"%PDF-1.4 clean", subject="clean"))[0] == 250
    assert [m for m in fetch_all(node, user) if b"Subject: clean" in m] and len(fetch_all(node, user)) == 1


def test_archives_are_scanned_deep(node):
    user = node.add_user("av2")
    code, text = deliver(node, user, with_attachment("figures.zip", nested_archive(10)))  # 10 archives deep
    assert code == 554 and "Dizimail-Test.Marker" in text, (code, text)
    assert fetch_all(node, user) == []


def test_logged_in_users_mail_is_scanned_too(node):
    user = node.add_user("av3")
    with submit(node, user) as s:
        s.mail(user)
        s.rcpt(user)
        code, text = s.data(with_attachment("eicar.com", EICAR))
    assert code == 554 and b"Dizimail-Test.EICAR" in text, (code, text)


def test_self_check_detects_the_test_file(node):
    assert node.call(lambda s: s.scanner.self_check()) is True


def test_mail_is_tempfailed_while_clamd_is_down_and_arrives_once_after(tmp_path, clamd):
    srv = start_server(tmp_path / "n", extra=f'\n[antivirus]\nclamd = "{clamd.address}"\ntimeout = "5s"\n')
    try:
        user = srv.add_user("av4")
        clamd.stop()
        try:
            code, text = deliver(srv, user, with_attachment("report.pdf", b"%PDF-1.4 clean", subject="retried"))
            assert code == 451 and "4.7.1" in text, (code, text)
            assert srv.call(lambda s: s.scanner.self_check()) is False
        finally:
            clamd.start()
        assert deliver(srv, user, with_attachment("report.pdf", b"%PDF-1.4 clean", subject="retried"))[0] == 250
        assert len([m for m in fetch_all(srv, user) if b"Subject: retried" in m]) == 1
    finally:
        srv.stop()


def quarantine_node(tmp_path, clamd: ClamdPeer, keep: str = "30d", sweep: str = "60s", every: str = "2s") -> ServerThread:
    config_file, ports = write_config(tmp_path, extra=(
        f'\n[antivirus]\nclamd = "{clamd.address}"\naction = "quarantine"\n'
        f'[quarantine]\nnotify_virus = ["recipients", "sender", "admin"]\nkeep = "{keep}"\nnotice_every = "{every}"\n'))
    config_file.write_text(config_file.read_text().replace("[storage]\n", f'[storage]\nsweep_interval = "{sweep}"\n'))
    srv = ServerThread(config_file, ports)
    srv.start()
    admin = srv.add_user("admin")
    srv.call(lambda s: s.accounts.add_alias("postmaster@example.test", [admin]))
    return srv


def entries(srv: ServerThread) -> list[dict]:
    return json.loads(dizimail_cli(srv.config_file, "quarantine", "list", "--json").stdout)


def test_quarantined_virus_is_held_explained_released_and_deleted(tmp_path, clamd):
    """antivirus.action = quarantine: the infected message is taken (250) but delivered to nobody; the
    recipient and the admin get bilingual notices (a forged outside sender gets none); the admin sees
    why, releases one message to its recipient and deletes another, whose blob then goes."""
    srv = quarantine_node(tmp_path / "n", clamd)
    try:
        user, admin = srv.add_user("av5"), "admin@example.test"
        infected = with_attachment("eicar.com", EICAR, subject="=?utf-8?b?5Y+R56Wo?= invoice")  # 发票
        for _ in range(2):
            code, text = deliver(srv, user, infected)
            assert code == 250, (code, text)
        held = wait_for(lambda: len(entries(srv)) == 2 and entries(srv), what="two entries")
        first = held[1]
        assert first["kind"] == "virus" and first["reason"] == "virus Dizimail-Test.EICAR.UNOFFICIAL", first
        assert first["recipients"] == [user] and first["sender"] == "someone@example.org", first
        assert first["subject"] == "发票 invoice" and first["from"] == "someone@example.org", first
        assert {"check": "antivirus", "result": "infected", "points": 0.0,
                "reason": "virus Dizimail-Test.EICAR.UNOFFICIAL"} in first["findings"], first

        notices = wait_for(lambda: len(fetch_all(srv, user)) == 2 and fetch_all(srv, user), what="two notices")
        text = notices[0].decode("utf-8", "replace")
        assert "Auto-Submitted: auto-generated" in text and "From: =?utf-8?" in text, text
        body = email.message_from_bytes(notices[0]).get_payload(decode=True).decode("utf-8")
        assert "Dizimail-Test.EICAR" in body and "已被隔离" in body and "held in the quarantine" in body and "发票 invoice" in body, body
        assert all(b"filename=eicar.com" not in m for m in notices)  # the virus itself stays in the quarantine
        to_admin = wait_for(lambda: len(fetch_all(srv, admin)) == 2 and fetch_all(srv, admin), what="admin notices")
        admin_body = email.message_from_bytes(to_admin[0]).get_payload(decode=True).decode("utf-8")
        assert f"dizimail quarantine release {first['id']}" in admin_body or \
            f"dizimail quarantine release {held[0]['id']}" in admin_body, admin_body
        assert "antivirus=infected" in admin_body, admin_body

        shown = dizimail_cli(srv.config_file, "quarantine", "show", str(first["id"])).stdout
        assert "virus Dizimail-Test.EICAR.UNOFFICIAL" in shown and "Subject: =?utf-8?b?5Y+R56Wo?= invoice" in shown, shown

        out = dizimail_cli(srv.config_file, "quarantine", "release", str(first["id"])).stdout
        assert "released: 1 local delivery" in out, out
        inbox = fetch_all(srv, user)
        assert len(inbox) == 3 and sum(b"filename=eicar.com" in m for m in inbox) == 1  # the admin's choice: delivered once
        assert [e["id"] for e in entries(srv)] == [held[0]["id"]]

        dizimail_cli(srv.config_file, "quarantine", "delete", str(held[0]["id"]))
        assert entries(srv) == []
        gone = dizimail_cli(srv.config_file, "quarantine", "release", str(held[0]["id"]), check=False)
        assert gone.returncode != 0 and "No such message in the quarantine" in gone.stderr, (gone.stdout, gone.stderr)
        # The deleted entry's blob lost its only reference (the sweeper takes it after the grace period).
        unreferenced = srv.call_stores(lambda st: st.db.read(lambda c: c.connection.driver_connection.execute(
            "SELECT count(*) FROM blobs WHERE refcount <= 0 AND zero_since IS NOT NULL").fetchone()[0]))
        assert unreferenced == 1
    finally:
        srv.stop()


def test_a_released_submission_leaves_dkim_signed_as_it_would_have_without_the_quarantine(tmp_path, clamd):
    """A logged-in user's message to a remote recipient, held for a virus: released, it reaches the remote
    side with the DKIM signature it would have carried (made when it was held), and the signature verifies."""
    srv = quarantine_node(tmp_path / "n", clamd)
    try:
        txt = dizimail_cli(srv.config_file, "dkim", "generate", "example.test").stdout.split('"')[1]
        user = srv.add_user("av10")
        with SmtpSinkPeer(tmp_path / "sink", free_port()) as sink:
            add_route(srv, "sink.test", f"127.0.0.1:{sink.port}")
            message = with_attachment("eicar.com", EICAR, subject="held outbound").replace(
                b"From: someone@example.org", f"From: <{user}>".encode())
            with submit(srv, user) as s:
                s.sendmail(user, ["partner@sink.test"], message)
            (entry,) = wait_for(lambda: entries(srv), what="the entry")
            assert entry["recipients"] == ["partner@sink.test"], entry
            out = dizimail_cli(srv.config_file, "quarantine", "release", str(entry["id"])).stdout
            assert f"entry {entry['id']} released" in out, out
            (sent,) = sink.wait_for(1)
        data = sent.data.replace(b"\n", b"\r\n")
        assert b"DKIM-Signature:" in data and b"d=example.test" in data, data[:600]
        assert dkim.verify(data, dnsfunc=lambda name, timeout=5: txt.encode()), data[:600]
    finally:
        srv.stop()


def test_an_outbreak_sends_each_person_a_notice_and_then_a_digest_not_a_mail_per_message(tmp_path, clamd):
    """Five infected messages within quarantine.notice_every: the recipient and the admin each get the
    first notice at once and one bilingual digest of the other four at the end of the interval."""
    srv = quarantine_node(tmp_path / "n", clamd, every="6s")  # the five arrive well within it
    try:
        user, admin = srv.add_user("av9"), "admin@example.test"
        for n in range(5):
            assert deliver(srv, user, with_attachment("eicar.com", EICAR, subject=f"outbreak {n}"))[0] == 250
        held = wait_for(lambda: len(entries(srv)) == 5 and entries(srv), what="five entries")
        for who in (user, admin):
            got = wait_for(lambda who=who: len(fetch_all(srv, who)) == 2 and fetch_all(srv, who), what=f"{who}: digest")
            digest = email.message_from_bytes(got[1])
            body = digest.get_payload(decode=True).decode("utf-8")
            assert "又有 4 封邮件被隔离" in str(email.header.make_header(email.header.decode_header(digest["Subject"])))
            assert "4 more messages were held" in body and "自上一封通知以来" in body, body
            listed = {e["id"] for e in held} - {min(e["id"] for e in held)}
            assert all(f"  {i:>7}  " in body for i in listed), body
    finally:
        srv.stop()


def test_a_local_senders_virus_is_held_and_the_sender_told(tmp_path, clamd):
    srv = quarantine_node(tmp_path / "n", clamd)
    try:
        user, other = srv.add_user("av6"), srv.add_user("av7")
        with submit(srv, user) as s:
            s.sendmail(user, [other], with_attachment("eicar.com", EICAR, subject="from inside"))
        told = wait_for(lambda: fetch_all(srv, user), what="the sender's notice")
        body = email.message_from_bytes(told[0]).get_payload(decode=True).decode("utf-8")
        assert "请检查您的电脑是否感染病毒" in body and "check your computer for viruses" in body and other in body, body
        assert all(b"filename=eicar.com" not in m for m in fetch_all(srv, other))
    finally:
        srv.stop()


def append(node: ServerThread, user: str, data: bytes) -> None:
    """Put a message straight into a mailbox (IMAP APPEND: a user's own copy, not scanned)."""
    with imap_login(node, user) as imap:
        assert imap.append("INBOX", None, None, data)[0] == "OK"


def test_an_infected_message_fetched_from_an_external_mailbox_is_held_not_bounced(node):
    """Fetched mail has no client to refuse, and a bounce would go to a forged sender: even with
    ``antivirus.action = reject`` the infected message is taken off the remote side into the quarantine
    (the owner is told), and the clean one arrives."""
    owner, outside = node.add_user("avf1"), node.add_user("avf2")
    append(node, outside, b"Return-Path: <someone@example.org>\r\n"
           + with_attachment("eicar.com", EICAR, subject="fetched virus"))
    append(node, outside, b"From: friend@example.org\r\nSubject: fetched clean\r\n\r\nhello\r\n")
    before = {e["id"] for e in entries(node)}
    dizimail_cli(node.config_file, "fetch", "add", f"127.0.0.1:{node.ports['pop3']}", outside, "--password", PASSWORD,
                 "--security", "starttls", "--no-verify", "--to", owner, "--interval", "1h")
    dizimail_cli(node.config_file, "fetch", "run")  # or the node's own timer takes them first: either way
    [held] = wait_for(lambda: [e for e in entries(node) if e["id"] not in before], what="the held virus")
    assert held["kind"] == "virus" and held["recipients"] == [owner] and "Dizimail-Test.EICAR" in held["reason"], held
    inbox = wait_for(lambda: len(fetch_all(node, owner)) == 2 and fetch_all(node, owner), what="the mail and the notice")
    assert sum(b"Subject: fetched clean" in m for m in inbox) == 1
    assert all(b"filename=eicar.com" not in m for m in inbox)
    assert fetch_all(node, outside) == []
    queued = json.loads(dizimail_cli(node.config_file, "queue", "list", "--json").stdout)
    assert not [q for q in queued if "someone@example.org" in json.dumps(q)], queued  # no bounce went out


def test_fetched_mail_waits_on_the_remote_side_while_clamd_is_down(tmp_path, clamd):
    """Not scanned is not taken: with clamd down a fetched message stays where it is (no bounce, no
    delivery), the account shows why, and the next run after clamd is back delivers it once."""
    srv = start_server(tmp_path / "n", extra=f'\n[antivirus]\nclamd = "{clamd.address}"\ntimeout = "5s"\n'
                                                 '[fetch]\non_login = false\ncheck_interval = "1h"\n')
    try:
        owner, outside = srv.add_user("avf3"), srv.add_user("avf4")
        append(srv, outside, with_attachment("report.pdf", b"%PDF-1.4 clean", subject="fetched later"))
        dizimail_cli(srv.config_file, "fetch", "add", f"127.0.0.1:{srv.ports['pop3']}", outside, "--password",
                     PASSWORD, "--security", "starttls", "--no-verify", "--to", owner)
        clamd.stop()
        try:
            assert "0 message(s) fetched" in dizimail_cli(srv.config_file, "fetch", "run").stdout
            [account] = json.loads(dizimail_cli(srv.config_file, "fetch", "list", "--json").stdout)
            assert "antivirus" in account["last_error"], account
            assert len(fetch_all(srv, outside)) == 1 and fetch_all(srv, owner) == []
        finally:
            clamd.start()
        assert "1 message(s) fetched" in dizimail_cli(srv.config_file, "fetch", "run").stdout
        assert [b"Subject: fetched later" in m for m in fetch_all(srv, owner)] == [True]
        assert fetch_all(srv, outside) == []
    finally:
        srv.stop()


def test_quarantine_expires(tmp_path, clamd):
    srv = quarantine_node(tmp_path / "n", clamd, keep="8s", sweep="1s")
    try:
        user = srv.add_user("av8")
        assert deliver(srv, user, with_attachment("eicar.com", EICAR))[0] == 250
        assert len(entries(srv)) == 1
        wait_for(lambda: entries(srv) == [], what="the entry to expire")
    finally:
        srv.stop()


class CuttingWatch(threading.Thread):
    """A loopback relay to clamd that kills clamd (SIGKILL) once ``after`` bytes of one scan went through:
    clamd dies in the middle of a scan, not before it."""

    def __init__(self, clamd: ClamdPeer, after: int) -> None:
        super().__init__(daemon=True)
        self.clamd, self.after, self.armed = clamd, after, True
        self.server = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.server.getsockname()[1]}"

    def run(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self.relay, args=(client,), daemon=True).start()

    def relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.clamd.port), timeout=10)
        except OSError:
            client.close()
            return
        threading.Thread(target=self.pipe, args=(upstream, client), daemon=True).start()
        sent = 0
        with client, upstream:
            while data := client.recv(65536):
                upstream.sendall(data)
                sent += len(data)
                if self.armed and sent > self.after:
                    self.armed = False
                    self.clamd.kill()
                    return

    @staticmethod
    def pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)


def test_clamd_killed_mid_scan_tempfails_and_the_retry_arrives_once(tmp_path):
    with ClamdPeer(tmp_path / "clamd", free_port()) as clamd:
        watch = CuttingWatch(clamd, after=256 * 1024)
        watch.start()
        srv = start_server(tmp_path / "n", extra=f'\n[antivirus]\nclamd = "{watch.address}"\ntimeout = "10s"\n')
        try:
            user = srv.add_user("av9")
            big = with_attachment("archive.bin", os.urandom(1024 * 1024), subject="big and retried")
            code, text = deliver(srv, user, big)
            assert code == 451 and "4.7.1" in text, (code, text)  # clamd died while it read the message
            assert not watch.armed and fetch_all(srv, user) == []
            clamd.start()
            assert deliver(srv, user, big)[0] == 250  # the client's retry
            assert len([m for m in fetch_all(srv, user) if b"Subject: big and retried" in m]) == 1
        finally:
            srv.stop()
            watch.server.close()


class HoldingWatch(CuttingWatch):
    """A loopback relay to clamd that holds the scan of the test's message until ``release`` is set: the
    message stays in the checks at the end of DATA for as long as the test wants."""

    def __init__(self, clamd: ClamdPeer) -> None:
        super().__init__(clamd, after=0)
        self.holding, self.release = threading.Event(), threading.Event()

    def relay(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.clamd.port), timeout=10)
        threading.Thread(target=self.pipe, args=(upstream, client), daemon=True).start()
        with client, upstream:
            while data := client.recv(65536):
                if self.armed and b"four kilobytes" in data:  # the test's message, not the self-check
                    self.armed = False
                    self.holding.set()
                    self.release.wait(30)
                upstream.sendall(data)


def test_messages_being_checked_are_bounded_in_memory_and_the_next_one_waits_its_turn(tmp_path, clamd):
    """limits.max_check_memory: a message whose bytes the checks hold counts until it is committed; one
    finishing while the budget is spent gets 451 (its sender retries), and a message alone always fits."""
    watch = HoldingWatch(clamd)
    watch.start()
    srv = start_server(tmp_path / "n", extra=f'\n[antivirus]\nclamd = "{watch.address}"\ntimeout = "20s"\n'
                                                 '[limits]\nmax_check_memory = "3KB"\n')
    try:
        user = srv.add_user("av10")
        big = b"Subject: four kilobytes\r\n\r\n" + (b"x" * 62 + b"\r\n") * 64  # over the budget: alone, it fits
        small = b"Subject: small\r\n\r\nhello\r\n"
        first: list[tuple[int, str]] = []
        sender = threading.Thread(target=lambda: first.append(deliver(srv, user, big)))
        sender.start()
        assert watch.holding.wait(20)  # the big one is in the virus scan now
        code, text = deliver(srv, user, small)
        assert code == 451 and "4.3.0" in text, (code, text)
        watch.release.set()
        sender.join(30)
        assert first and first[0][0] == 250, first
        assert deliver(srv, user, small)[0] == 250  # the budget came back
        assert sorted(b"four kilobytes" in m for m in fetch_all(srv, user)) == [False, True]
    finally:
        srv.stop()
        watch.server.close()



def test_a_node_whose_clamd_is_down_stops_when_told(tmp_path):
    """SIGTERM right after the start, while the first self-check fails (clamd down), ends the node. Python
    3.11's asyncio.wait_for (inside aioclamd) turned the cancellation into the connection error, which the
    self-check logged before sleeping an hour: the node never stopped (services.cancel). Nothing may be left
    for the stop's backstop either (a task still running 10 s after its cancel is logged as stuck)."""
    config_file, _ = write_config(tmp_path, f'\n[antivirus]\nclamd = "127.0.0.1:{free_port()}"\n')
    for attempt, pause in enumerate((0.0, 0.0, 0.001, 0.005, 0.02)):  # the stop meets the check at some step
        node = ServerProcess(config_file, tmp_path / f"node-{attempt}.log")
        try:
            node.wait_ready()
            time.sleep(pause)
            node.proc.send_signal(signal.SIGTERM)
            assert node.proc.wait(60) == 0
        finally:
            node.kill()
        log = (tmp_path / f"node-{attempt}.log").read_text(errors="replace")
        assert "node.stopped" in log and "stuck" not in log, log


def test_a_quarantined_list_post_released_goes_to_the_members(tmp_path, clamd):
    """An infected post to a mailing list is held like any mail; released, the list sends it on (issue #12),
    and the moderation queue never shows quarantined mail (nor the quarantine held posts)."""
    srv = quarantine_node(tmp_path / "n", clamd)
    try:
        member = srv.add_user("lm")
        srv.call(lambda s: s.lists.create("team@example.test", policy="anyone", members=[member]))
        code, _ = deliver(srv, "team@example.test", with_attachment("eicar.com", EICAR))
        assert code == 250
        held = wait_for(lambda: entries(srv), what="entry")
        assert held[0]["recipients"] == ["team@example.test"]
        assert srv.call(lambda s: s.lists.held("team@example.test")) == []
        dizimail_cli(srv.config_file, "quarantine", "release", str(held[0]["id"]))
        copies = wait_for(lambda: [m for m in fetch_all(srv, member) if b"filename=eicar.com" in m], what="post")
        assert b"List-Id: " in copies[0] and entries(srv) == []
    finally:
        srv.stop()
