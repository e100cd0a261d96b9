"""Port 25 served by worker processes (``server.smtp_workers``, app.workers): the node admits and counts
each connection and hands it over; a worker runs the session and tells the node what it must know
(mail for an IDLE session, mail for the queue runner, a connection's end). A worker killed with
SIGKILL is replaced, and what it had acknowledged is there."""

from __future__ import annotations

import imaplib
import os
import re
import signal
import smtplib
import socket
import time
from pathlib import Path

import pytest

from conftest import DOMAIN, PASSWORD, client_tls, dizimail_cli, write_config
from helpers import wait_for
from peers import SmtpSinkPeer, free_port
from processes import ServerProcess


def workers_node(tmp_path: Path, count: int, extra: str = "") -> tuple[Path, dict[str, int], ServerProcess]:
    config_file, ports = write_config(tmp_path / "node", extra=extra)
    # The IDLE sessions below hear of new mail only through the workers' news: the re-check is an hour away.
    text = config_file.read_text().replace("[server]\n", f"[server]\nsmtp_workers = {count}\n", 1)
    config_file.write_text(text.replace("[storage]\n", '[storage]\nrecheck_interval = "1h"\n', 1))
    node = ServerProcess(config_file, tmp_path / "node.log")
    node.wait_ready()
    wait_for(lambda: node.tail(200).count("smtp.worker.ready") >= count, what=f"{count} workers ready")
    return config_file, ports, node


def worker_pids(node: ServerProcess) -> list[int]:
    return [int(p) for p in re.findall(r"smtp\.worker\.ready pid=(\d+)", node.tail(400))]


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def send(port: int, source: str, rcpt: str, subject: str) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, source_address=(source, 0), local_hostname="client.example.org",
                      timeout=30) as s:
        s.ehlo()
        assert s.mail("someone@outside.example")[0] == 250
        assert s.rcpt(rcpt)[0] == 250
        return s.data(f"From: someone@outside.example\r\nSubject: {subject}\r\n\r\nhello\r\n".encode())


def idle_until_exists(imap: imaplib.IMAP4, trigger) -> bytes:
    tag = imap._new_tag().decode()
    imap.send(f"{tag} IDLE\r\n".encode())
    assert imap.readline().startswith(b"+")
    trigger()
    imap.sock.settimeout(30)  # far below the hour of the re-check
    line = imap.readline()
    imap.send(b"DONE\r\n")
    while not imap.readline().startswith(tag.encode()):
        pass
    return line


def test_workers_serve_port_25_tell_idle_sessions_and_wake_the_queue_runner(tmp_path):
    sink_port = free_port()
    with SmtpSinkPeer(tmp_path / "sink", sink_port) as sink:
        config_file, ports, node = workers_node(tmp_path, 2, extra=(
            '\n[smtp]\ntrusted_networks = ["127.0.0.1/32"]\n'
            f'[delivery]\npoll_interval = "1h"\nsmarthost = "127.0.0.1:{free_port()}"\n'))
        try:
            user = f"w1@{DOMAIN}"
            dizimail_cli(config_file, "user", "add", user, "--password", PASSWORD)
            dizimail_cli(config_file, "route", "add", "sink.test", f"127.0.0.1:{sink_port}")
            imap = imaplib.IMAP4("127.0.0.1", ports["imap"], timeout=30)
            imap.starttls(client_tls())
            imap.login(user, PASSWORD)
            assert imap.select("INBOX") == ("OK", [b"0"])
            sources = [f"127.0.0.{n}" for n in range(20, 28)]
            line = idle_until_exists(imap, lambda: send(ports["smtp"], sources[0], user, "first")[0] == 250 or None)
            assert line == b"* 1 EXISTS\r\n", line
            for n, source in enumerate(sources[1:], 2):
                assert send(ports["smtp"], source, user, f"message {n}")[0] == 250
            assert imap.select("INBOX") == ("OK", [str(len(sources)).encode()])
            imap.logout()
            # Sessions ran in both workers, none in the node (a worker's sessions are named w<slot>s<n>).
            log = node.tail(400)
            served = set(re.findall(r"smtp\.disconnect session=(w\d)s\d+ mode=mx", log))
            assert served == {"w0", "w1"}, log
            assert not re.search(r"smtp\.disconnect session=s\d+ mode=mx", log), log

            # Relayed mail queued by a worker wakes the node's queue runner (its own poll is an hour away).
            time.sleep(1)  # the workers' routing tables are re-read every 0.5 s
            assert send(ports["smtp"], "127.0.0.1", "partner@sink.test", "relayed")[0] == 250
            (relayed,) = sink.wait_for(1)
            assert relayed.recipients == ["partner@sink.test"] and b"Subject: relayed" in relayed.data

            # No AUTH on port 25 now, before or after STARTTLS; submission (the node's) still offers it.
            with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=30) as s:
                s.starttls(context=client_tls())
                s.ehlo()
                assert not s.has_extn("auth")
                code, text = s.docmd("AUTH", "PLAIN AHVzZXIAcGFzcw==")
                assert code == 502 and b"submission" in text, (code, text)
            with smtplib.SMTP("127.0.0.1", ports["submission"], timeout=30) as s:
                s.starttls(context=client_tls())
                s.ehlo()
                assert s.has_extn("auth")
                s.login(user, PASSWORD)
            pids = worker_pids(node)
        finally:
            node.stop()
    # The workers' counts of received mail reach the node (its search indexer waits while a burst arrives).
    assert "node.stopped received=9" in node.log_path.read_text(), node.log_path.read_text()[-3000:]
    assert len(pids) == 2 and not [pid for pid in pids if alive(pid)], ("workers outlived the node", pids)


def greeting(port: int, source: str) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0))
    return sock, sock.recv(512)


def admitted(port: int, source: str) -> bool:
    sock, greeted = greeting(port, source)
    sock.close()
    return greeted.startswith(b"220")


def both_admitted(port: int, source: str) -> list[tuple[socket.socket, bytes]] | None:
    """Two connections at once, both greeted with 220; None (both closed) while an earlier one still counts."""
    pair = [greeting(port, source) for _ in range(2)]
    if all(g.startswith(b"220") for _, g in pair):
        return pair
    for sock, _ in pair:
        sock.close()
    return None


def test_a_killed_worker_is_replaced_its_connections_are_released_and_nothing_acknowledged_is_lost(tmp_path):
    config_file, ports, node = workers_node(tmp_path, 1, extra="\n[limits]\nmax_connections_per_ip = 2\n")
    try:
        user = f"w2@{DOMAIN}"
        dizimail_cli(config_file, "user", "add", user, "--password", PASSWORD)
        source = "127.0.0.40"
        assert send(ports["smtp"], source, user, "before the kill")[0] == 250

        # Two connections (the limit): a third is refused by the node; ended ones count no more (the sending
        # one's end reaches the node from its worker a moment after the client saw it).
        first = wait_for(lambda: both_admitted(ports["smtp"], source), what="two connections admitted")
        assert isinstance(first, list)
        third, refused = greeting(ports["smtp"], source)
        third.close()
        assert refused.startswith(b"421"), refused
        for sock, _ in first:
            sock.sendall(b"QUIT\r\n")
            sock.recv(512)
            sock.close()
        wait_for(lambda: admitted(ports["smtp"], source), what="a connection admitted once the first two ended")

        # One client in the middle of DATA, one idle: the worker dies under both.
        (pid,) = worker_pids(node)
        busy, _ = greeting(ports["smtp"], source)
        for command in (b"EHLO client.example.org\r\n", b"MAIL FROM:<someone@outside.example>\r\n",
                        f"RCPT TO:<{user}>\r\n".encode(), b"DATA\r\n"):
            busy.sendall(command)
            time.sleep(0.2)
        busy.recv(4096)
        busy.sendall(b"Subject: cut short\r\n\r\nhalf a mess")
        os.kill(pid, signal.SIGKILL)
        busy.settimeout(30)
        with pytest.raises((ConnectionError, OSError)):
            data = busy.recv(512)
            if not data:
                raise ConnectionResetError("closed")
        busy.close()
        wait_for(lambda: len(worker_pids(node)) == 2 and alive(worker_pids(node)[1]), what="a new worker")
        # The dead worker's connections no longer count: two new ones are both admitted.
        both = wait_for(lambda: both_admitted(ports["smtp"], source), what="the dead worker's connections released")
        assert isinstance(both, list)
        for sock, _ in both:
            sock.close()
        # The client retries; the message arrives once, beside the one acknowledged before the kill.
        wait_for(lambda: admitted(ports["smtp"], source), what="the two connections above to end")
        assert send(ports["smtp"], source, user, "cut short")[0] == 250
        imap = imaplib.IMAP4("127.0.0.1", ports["imap"], timeout=30)
        imap.starttls(client_tls())
        imap.login(user, PASSWORD)
        imap.select("INBOX")
        _, data = imap.search(None, "ALL")
        subjects = []
        for n in data[0].split():
            _, parts = imap.fetch(n, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            subjects.append(parts[0][1].decode().strip())
        imap.logout()
        assert sorted(subjects) == ["Subject: before the kill", "Subject: cut short"], subjects
        # The node itself killed: its worker sees the channel close and leaves too.
        (_dead, replacement) = worker_pids(node)
        node.kill()
        wait_for(lambda: not alive(replacement), what="the worker to leave with its node")
    finally:
        node.stop()


def test_one_client_spreads_over_the_workers_and_its_connection_rate_holds_across_them(tmp_path):
    """One address's connections go to the least busy worker (the inner server gets all its mail from its
    gateway's one address), so each worker enforces its share of antispam.max_connection_rate: 4 a
    minute over two workers, and the fifth connection in the minute is told 421 4.7.0."""
    _config_file, ports, node = workers_node(tmp_path, 2, extra=(
        '\n[antispam]\nmax_connection_rate = 4\nexempt_networks = []\ndnsbl_zones = []\npregreet_wait = "0s"\n'))
    try:
        source = "127.0.0.50"
        greetings = []
        for n in range(5):
            sock, greeted = greeting(ports["smtp"], source)
            if greeted.startswith(b"220"):
                sock.sendall(b"QUIT\r\n")
                sock.recv(512)
            sock.close()
            greetings.append(greeted[:3])
            if greeted.startswith(b"220"):  # its worker has ended the session (and told the node) before the next
                wait_for(lambda n=n: len(re.findall(r"smtp\.disconnect session=w\d+s\d+ mode=mx ip=127\.0\.0\.50",
                                                    node.tail(400))) > n, what="the session's end")
                time.sleep(0.1)
        assert greetings == [b"220"] * 4 + [b"421"], greetings
        log = node.tail(400)
        served = set(re.findall(r"smtp\.disconnect session=(w\d)s\d+ mode=mx ip=127\.0\.0\.50", log))
        assert served == {"w0", "w1"}, log
    finally:
        node.stop()
