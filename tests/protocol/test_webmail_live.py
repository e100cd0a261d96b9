"""Webmail's live updates (issue #13): the page's event stream (server-sent events, fed by the Notifier IMAP
IDLE listens to) says "changed" when mail arrives over SMTP, when an IMAP client flags or expunges, when a
folder is made; a quiet stream keeps alive; one account holds a bounded number of streams."""

from __future__ import annotations

import smtplib
import time
import urllib.error
import urllib.request
from typing import Any

from conftest import PASSWORD
from helpers import imap_login
from web_tools import WebClient


def stream(web: WebClient) -> Any:
    req = urllib.request.Request(web.base + "/mail/events", headers={"Accept": "text/event-stream"})
    return web.opener.open(req, timeout=30)


def next_event(response: Any) -> str:
    """The next event's name ("" for a comment, the stream's keep-alive); blocks until it comes."""
    lines = []
    while (line := response.readline().decode()) not in ("\n", ""):
        lines.append(line.rstrip("\n"))
    return next((ln.split(": ", 1)[1] for ln in lines if ln.startswith("event: ")), "")


def test_new_mail_flags_and_folders_from_other_clients_reach_the_page_as_events(server, user):
    web = WebClient(server)
    web.login(user, PASSWORD, admin=False)
    response = stream(web)
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.readline() == b"retry: 2000\n" and response.readline() == b"\n"
    assert next_event(response) == ""  # listening

    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        s.sendmail("a@outside.example", [user], b"Subject: live one\r\n\r\nhello\r\n")
    assert next_event(response) == "changed"
    with imap_login(server, user) as imap:
        imap.select("INBOX")
        imap.uid("STORE", "1:*", "+FLAGS", "(\\Flagged)")
        assert next_event(response) == "changed"
        imap.create("Projects")
        assert next_event(response) == "changed"
        imap.select("Projects")  # a folder made after the stream began is heard too
        imap.append("Projects", None, None, b"Subject: filed\r\n\r\nx\r\n")
        assert next_event(response) == "changed"
    response.close()


def test_streams_need_a_login_and_one_account_holds_a_bounded_number(server, user):
    anonymous = WebClient(server, follow=False)
    assert anonymous.get("/mail/events").status == 303
    web = WebClient(server)
    web.login(user, PASSWORD, admin=False)
    opened = [stream(web) for _ in range(8)]
    assert web.get("/mail/events").status == 429  # the ninth
    for response in opened:
        response.close()
    deadline = time.monotonic() + 10
    while True:  # the server hears the closed ones go, and takes a new one
        try:
            with stream(web) as again:
                assert again.status == 200 and again.readline() == b"retry: 2000\n"
            break
        except urllib.error.HTTPError as exc:
            assert exc.code == 429 and time.monotonic() < deadline
            time.sleep(0.1)
