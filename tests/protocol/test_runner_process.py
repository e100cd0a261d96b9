"""The queue runner in its own process (``delivery.runner = "process"``) passes its local deliveries
on to the node's sessions: an IDLE session hears of mail the runner delivered through that news,
not through its periodic re-check, which is set to an hour here (services.notify, app.runner)."""

from __future__ import annotations

import imaplib
import smtplib

from conftest import DOMAIN, PASSWORD, client_tls, dizimail_cli, write_config
from processes import ServerProcess


def test_a_local_delivery_by_the_runner_process_reaches_an_idle_session(tmp_path):
    config_file, ports = write_config(tmp_path / "node", extra=(
        '\n[delivery]\nrunner = "process"\nretry_schedule = ["1h"]\npoll_interval = "0.2s"\n'))
    # Without the news, the IDLE session would learn of the delivery only at this re-check.
    config_file.write_text(config_file.read_text().replace("[storage]\n", '[storage]\nrecheck_interval = "1h"\n'))
    address = f"full@{DOMAIN}"
    dizimail_cli(config_file, "user", "add", address, "--password", PASSWORD, "--quota", "2KB")
    dizimail_cli(config_file, "user", "add", f"roomy@{DOMAIN}", "--password", PASSWORD)
    node = ServerProcess(config_file, tmp_path / "node.log")
    try:
        node.wait_ready()
        body = b"Subject: over quota\r\n\r\n" + (b"x" * 76 + b"\r\n") * 60  # 4.7 KB
        with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=30) as s:
            s.ehlo()  # no SIZE=: the RCPT is taken; at commit the full mailbox's copy is queued for later
            assert s.mail("sender@outside.example")[0] == 250
            assert s.rcpt(address)[0] == 250 and s.rcpt(f"roomy@{DOMAIN}")[0] == 250
            code, reply = s.data(body)
            assert code == 250 and b"1 deferred: mailbox full" in reply, reply
        assert "1 messages in queue" in dizimail_cli(config_file, "queue", "list").stdout
        imap = imaplib.IMAP4("127.0.0.1", ports["imap"], timeout=30)
        imap.starttls(client_tls())
        imap.login(address, PASSWORD)
        assert imap.select("INBOX") == ("OK", [b"0"])
        dizimail_cli(config_file, "user", "quota", address, "1MB")
        tag = imap._new_tag().decode()
        imap.send(f"{tag} IDLE\r\n".encode())
        assert imap.readline().startswith(b"+")
        dizimail_cli(config_file, "queue", "flush")  # the runner child retries the local delivery
        imap.sock.settimeout(60)  # a bound for the test, far below the re-check
        line = imap.readline()
        assert line == b"* 1 EXISTS\r\n", line
        imap.send(b"DONE\r\n")
        while not imap.readline().startswith(tag.encode()):
            pass
        imap.logout()
    finally:
        node.stop()
