"""Sending on a schedule (issue #12): FUTURERELEASE (RFC 4865) on submission holds a message in the queue
until its time, where it can be seen and cancelled, then delivers it as a new message (the recipient's
rules apply then); `dizimail notice send --at` schedules the admin's broadcast the same way."""

from __future__ import annotations

import json
import smtplib
import time

import pytest

from conftest import dizimail_cli
from helpers import fetch_all, imap_login, submit, wait_for


def queued(server) -> list[dict]:
    return json.loads(dizimail_cli(server.config_file, "queue", "list", "--json").stdout)


def test_only_logged_in_submission_is_offered_future_release(server, user):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as mx:
        mx.ehlo("client.test")
        assert not mx.has_extn("futurerelease")
        code, _ = mx.docmd("MAIL FROM:<a@outside.test> HOLDFOR=60")
        assert code == 555
    s = submit(server, user)
    try:
        offered = s.esmtp_features["futurerelease"].split()
        assert offered[0] == "604800" and offered[1].endswith("Z")
        assert s.docmd(f"MAIL FROM:<{user}> HOLDFOR=999999")[0] == 554  # past the week we hold mail
        assert s.docmd(f"MAIL FROM:<{user}> HOLDFOR=5 HOLDUNTIL=2030-01-01T00:00:00Z")[0] == 501
        assert s.docmd(f"MAIL FROM:<{user}> HOLDUNTIL=2026-13-01T00:00:00Z")[0] == 501
    finally:
        s.quit()


def test_a_held_message_waits_in_the_queue_then_meets_the_recipients_rules(server, user):
    other = server.add_user(user.split("@")[0] + "r")

    async def rules(s):
        account = await s.accounts.get_user(other)
        await s.sieve.put(account.id, "r", 'require ["fileinto", "mailbox"];\nfileinto :create "Later";\n',
                          activate=True)
    server.call(rules)
    s = submit(server, user)
    try:
        s.sendmail(user, [other], f"From: {user}\r\nTo: {other}\r\nSubject: in three seconds\r\n\r\nhi\r\n".encode(),
                   mail_options=["HOLDFOR=3"])
    finally:
        s.quit()
    held = [e for e in queued(server) if any(r["address"] == other for r in e["recipients"])]
    assert held and held[0]["recipients"][0]["next_attempt"] > time.time(), held
    with imap_login(server, other) as imap:
        assert imap.select("Later")[0] == "NO"  # nothing delivered yet, not even the folder
    wait_for(lambda: not any(r["address"] == other for e in queued(server) for r in e["recipients"]),
             what="the release")

    def filed() -> bool:
        with imap_login(server, other) as imap:
            return imap.select("Later", readonly=True)[0] == "OK" and bool(imap.search(None, "ALL")[1][0])
    wait_for(filed, what="the released message in the folder its rules chose")


def test_a_held_message_can_be_cancelled(server, user):
    other = server.add_user(user.split("@")[0] + "c")
    s = submit(server, user)
    try:
        s.sendmail(user, [other, "far@outside.test"], b"Subject: never\r\n\r\nhi\r\n",
                   mail_options=["HOLDUNTIL=" + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))])
    finally:
        s.quit()
    [entry] = [e for e in queued(server) if any(r["address"] == other for r in e["recipients"])]
    assert {r["address"] for r in entry["recipients"]} == {other, "far@outside.test"}
    dizimail_cli(server.config_file, "queue", "delete", entry["queue_id"])
    assert not [e for e in queued(server) if e["queue_id"] == entry["queue_id"]]
    assert fetch_all(server, other) == []


@pytest.mark.parametrize("at", ["+2s"])
def test_a_notice_sent_later(server, at):
    users = [server.add_user(f"n{time.monotonic_ns()}{i}") for i in range(3)]
    out = dizimail_cli(server.config_file, "notice", "send", "--subject", "停电通知", "--body", "明天停电。",
                       "--domain", "example.test", "--at", at).stdout
    assert "waits in the queue until" in out
    assert all(fetch_all(server, u) == [] for u in users)
    wait_for(lambda: all(fetch_all(server, u) for u in users), what="the scheduled notice")
    too_far = dizimail_cli(server.config_file, "notice", "send", "--subject", "x", "--body", "y", "--at", "+30d",
                           check=False)
    assert too_far.returncode != 0
