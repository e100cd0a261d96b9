"""Webmail's writing beyond plain text (issue #13): rich text sent as clean HTML with its text/plain
alternative, a message forwarded as an attachment, priority and a read-receipt request, and sending later
(FUTURERELEASE: the message waits in the queue, in the user's time zone)."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from conftest import DOMAIN, PASSWORD, dizimail_cli
from helpers import fetch_all, imap_login
from web_tools import WebClient, compose_form, deliver, uid_of


def received(server, user: str) -> list[email.message.EmailMessage]:
    with imap_login(server, user) as imap:
        imap.select("INBOX", readonly=True)
        _, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[])")
    return [email.message_from_bytes(d[1], policy=email.policy.default) for d in data if isinstance(d, tuple)]


def test_rich_text_goes_as_clean_html_with_a_text_alternative_and_options_travel(server, user):
    other = server.add_user(f"rt{user.split('@')[0]}")
    web = WebClient(server)
    web.login(user, PASSWORD, admin=False)
    fields = compose_form(web)
    fields.update(to=other, subject="富文本 rich", rich="1", priority="high", receipt="on",
                  html='<p>各位：<b>明天</b>检修</p><ul><li>一号机</li></ul><script>alert(1)</script>'
                       '<p style="position:fixed" onclick="x()"><a href="javascript:alert(2)">bad</a> '
                       '<a href="https://plant.example/plan">计划</a></p><img src="https://tracker.example/p.gif">')
    answer = web.post("/mail/send", fields)
    assert answer.url.endswith("done=sent"), answer.text.split('id="compose-error">')[-1][:200]
    [got] = received(server, other)
    assert got.get_content_type() == "multipart/alternative"
    text, html = got.get_body(("plain",)).get_content(), got.get_body(("html",)).get_content()
    assert "各位：明天检修" in text and "- 一号机" in text and "计划 <https://plant.example/plan>" in text
    for bad in ("<script", "onclick", "javascript:", "style=", "<img", "tracker"):
        assert bad not in html, bad
    assert "<b>明天</b>" in html and 'href="https://plant.example/plan"' in html
    assert got["X-Priority"].startswith("1") and got["Importance"] == "high"
    assert user in got["Disposition-Notification-To"]


def test_a_message_forwarded_as_an_attachment_arrives_whole(server, user):
    other = server.add_user(f"fa{user.split('@')[0]}")
    deliver(server, user, "From: wang@plant.example\r\nSubject: 原始报告\r\nMIME-Version: 1.0\r\n"
                          "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                          "报告正文\r\n".encode())
    web = WebClient(server)
    uid = uid_of(web.login(user, PASSWORD, admin=False).text, "原始报告")
    fields = compose_form(web, f"/mail/compose?f=INBOX&attach={uid}")
    assert fields["original_uid"] == str(uid) and fields["subject"] == "Fwd: 原始报告"
    fields.update(to=other, body="见附件")
    assert web.post("/mail/send", fields).url.endswith("done=sent")
    [got] = received(server, other)
    [attached] = list(got.iter_attachments())
    assert attached.get_content_type() == "message/rfc822"
    inner = attached.get_content()
    assert inner["Subject"] == "原始报告" and "报告正文" in inner.get_body(("plain",)).get_content()


def test_sending_later_waits_in_the_queue_in_the_users_time_zone(server, user):
    other = server.add_user(f"sl{user.split('@')[0]}")
    web = WebClient(server)
    web.login(user, PASSWORD, admin=False)
    settings = web.get("/mail/settings")
    web.post("/mail/settings/prefs", {"csrf": settings.csrf, "time_zone": "Asia/Shanghai", "signature": ""})
    later = datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(hours=2)
    fields = compose_form(web)
    fields.update(to=other, subject="定时 later", body="两小时后", send_at=later.strftime("%Y-%m-%dT%H:%M"))
    sent = web.post("/mail/send", fields)
    assert sent.url.endswith("done=scheduled") and "等待" not in sent.text and "waits on the server" in sent.text
    time.sleep(0.5)
    assert fetch_all(server, other) == []
    queued = json.loads(dizimail_cli(server.config_file, "queue", "list", "--json").stdout)
    [waiting] = [r for q in queued for r in q["recipients"] if r["address"] == other]
    assert abs(waiting["next_attempt"] - later.replace(second=0, microsecond=0).timestamp()) < 60, (waiting, later)
    [queue_id] = [q["queue_id"] for q in queued if any(r["address"] == other for r in q["recipients"])]
    listed = web.get("/mail/scheduled").text
    assert "定时 later" in listed and other in listed and f'value="{queue_id}"' in listed
    stranger = WebClient(server)
    stranger.login(other, PASSWORD, admin=False)
    assert "定时 later" not in stranger.get("/mail/scheduled").text
    refused = stranger.submit("/mail/scheduled", "/mail/scheduled", {"id": queue_id})
    assert "error=unknown_queue_id" in refused.url  # not theirs to take back
    cancelled = web.submit("/mail/scheduled", "/mail/scheduled", {"id": queue_id})
    assert "done=send_cancelled" in cancelled.url and "定时 later" not in cancelled.text
    assert not [q for q in json.loads(dizimail_cli(server.config_file, "queue", "list", "--json").stdout)
                if q["queue_id"] == queue_id]

    for when, error in (((datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
                         "send_at_past"),
                        ((datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M"),
                         "future_release_too_far"), ("tomorrow at nine", "bad_send_at")):
        fields.update(send_at=when)
        refused = web.post("/mail/send", fields)
        assert refused.status == 422 and 'id="compose-error"' in refused.text, (when, error)


def test_a_display_name_that_decodes_to_a_line_break_cannot_add_a_header_to_the_reply(server, user):
    other = server.add_user(f"hi{user.split('@')[0]}")
    name = base64.b64encode(b"Boss\r\nBcc: victim@plant.example").decode()
    deliver(server, user, f"From: =?utf-8?b?{name}?= <{other}>\r\nSubject: injected\r\n\r\nhello\r\n".encode())
    web = WebClient(server)
    uid = uid_of(web.login(user, PASSWORD, admin=False).text, "injected")
    opened = web.get(f"/mail/read?f=INBOX&uid={uid}").text
    assert "Bcc: victim" in opened.split('id="header"')[1].split("</dl>")[0]  # shown, as text
    fields = compose_form(web, f"/mail/compose?f=INBOX&reply={uid}")
    fields.update(body="answer")
    answer = web.post("/mail/send", fields)
    assert answer.url.endswith("done=sent"), answer.text.split('id="compose-error">')[-1][:200]
    [got] = received(server, other)
    assert got["Bcc"] is None and got["To"].addresses[0].addr_spec == other and len(got["To"].addresses) == 1


def test_identities_are_the_users_own_addresses_and_another_is_refused(server, user):
    other = server.add_user(f"id{user.split('@')[0]}")
    alias = f"duty{user.split('@')[0]}@{DOMAIN}"
    dizimail_cli(server.config_file, "alias", "add", alias, user)
    web = WebClient(server)
    web.login(user, PASSWORD, admin=False)
    form = web.get("/mail/compose").text
    assert f'<option value="{alias}"' in form and f'<option value="{user}" selected' in form
    fields = compose_form(web)
    fields.update(to=other, subject="from the duty desk", body="值班", sender=alias)
    assert web.post("/mail/send", fields).url.endswith("done=sent")
    [got] = received(server, other)
    assert got["From"].addresses[0].addr_spec == alias
    fields.update(sender=other, subject="forged")
    refused = web.post("/mail/send", fields)
    assert refused.status == 422 and "You cannot send from that address" in refused.text
    assert len(received(server, other)) == 1


def test_a_read_receipt_goes_only_when_the_reader_sends_it_and_is_asked_once(server, user):
    asker = server.add_user(f"mdn{user.split('@')[0]}")
    web_asker = WebClient(server)
    web_asker.login(asker, PASSWORD, admin=False)
    fields = compose_form(web_asker)
    fields.update(to=user, subject="请确认 please confirm", body="读到请回执", receipt="on")
    assert web_asker.post("/mail/send", fields).url.endswith("done=sent")
    web = WebClient(server)
    uid = uid_of(web.login(user, PASSWORD, admin=False).text, "请确认 please confirm")
    opened = web.get(f"/mail/read?f=INBOX&uid={uid}").text
    assert 'id="receipt-request"' in opened and asker in opened.split('id="receipt-request"')[1][:600]
    assert received(server, asker) == []  # opening alone sends nothing
    sent = web.submit(f"/mail/read?f=INBOX&uid={uid}", "/mail/receipt", {"f": "INBOX", "uid": str(uid),
                                                                         "action": "send"})
    assert "done=receipt_sent" in sent.url and 'id="receipt-request"' not in sent.text
    [mdn] = received(server, asker)
    assert mdn.get_content_type() == "multipart/report" and mdn.get_param("report-type") == "disposition-notification"
    report = [p for p in mdn.walk() if p.get_content_type() == "message/disposition-notification"][0]
    text = report.as_string()
    assert "manual-action/MDN-sent-manually; displayed" in text and f"rfc822; {user}" in text
    assert "请确认" in mdn.get_body(("plain",)).get_content()
    with imap_login(server, user) as imap:
        imap.select("INBOX", readonly=True)
        assert b"$MDNSent" in imap.uid("FETCH", str(uid), "(FLAGS)")[1][0]
    web.submit(f"/mail/read?f=INBOX&uid={uid}", "/mail/receipt", {"f": "INBOX", "uid": str(uid), "action": "send"})
    assert len(received(server, asker)) == 1  # asked and answered once
    fields.update(subject="second ask")
    web_asker.post("/mail/send", fields)
    second = uid_of(web.get("/mail").text, "second ask")
    web.submit(f"/mail/read?f=INBOX&uid={second}", "/mail/receipt", {"f": "INBOX", "uid": str(second),
                                                                     "action": "ignore"})
    assert 'id="receipt-request"' not in web.get(f"/mail/read?f=INBOX&uid={second}").text
    assert len(received(server, asker)) == 1  # declined: nothing sent
