"""Webmail's drafts (issue #13): saved to Drafts as an IMAP client saves one (\\Draft, Bcc kept), reopened
with its attachments, replaced (never piled up) by each save and by the page's auto-save, gone once sent."""

from __future__ import annotations

import email
import email.policy
import json
import re
import urllib.parse

from conftest import PASSWORD
from helpers import imap_login
from web_tools import WebClient, compose_form, multipart


def drafts(server, user: str) -> list[tuple[bytes, bytes]]:
    """(flags, message) of every message in the user's Drafts, over IMAP."""
    with imap_login(server, user) as imap:
        imap.select("Drafts", readonly=True)
        _, data = imap.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
    return [(d[0], d[1]) for d in data if isinstance(d, tuple)]


def test_a_draft_is_saved_reopened_with_its_attachment_replaced_and_gone_when_sent(server, user):
    other = server.add_user(f"dr{user.split('@')[0]}")
    web = WebClient(server, lang="zh-CN")
    web.login(user, PASSWORD, admin=False)
    fields = compose_form(web)
    fields.update(to=other, bcc="boss@plant.example", subject="检修计划 draft", body="第一稿")
    body, kind = multipart({**fields, "save": "1"}, [("计划.pdf", "application/pdf", b"%PDF plan" * 100)])
    saved = web.request("POST", "/mail/send", body, {"Content-Type": kind})
    assert "/mail/compose?draft=" in saved.url and "草稿已保存到草稿箱" in saved.text
    [(flags, raw)] = drafts(server, user)
    assert b"\\Draft" in flags
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Bcc"] == "boss@plant.example" and message["Subject"] == "检修计划 draft"
    assert [p.get_filename() for p in message.iter_attachments()] == ["计划.pdf"]

    listed = web.get("/mail?f=Drafts")  # in Drafts, a message opens in the compose form
    uid = int(re.search(r'href="/mail/compose\?draft=(\d+)"', listed.text)[1])
    assert f"draft={uid}" in saved.url
    again = compose_form(web, f"/mail/compose?draft={uid}")
    assert again["to"] == other and again["bcc"] == "boss@plant.example" and again["body"] == "第一稿"
    assert again["draft_uid"] == str(uid)
    keep = re.findall(r'name="keep" value="(\d+)" checked> 计划.pdf', web.get(f"/mail/compose?draft={uid}").text)
    assert len(keep) == 1

    again.update(body="第二稿")  # the page's auto-save: no new files, the kept attachment goes on
    auto = web.request("POST", "/mail/draft", urllib.parse.urlencode([*again.items(), ("keep", keep[0])]).encode(),
                       {"Content-Type": "application/x-www-form-urlencoded"})
    answer = json.loads(auto.text)
    assert answer["uid"] > uid and len(answer["keep"]) == 1
    [(_flags, raw)] = drafts(server, user)  # replaced, not piled up
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert "第二稿" in message.get_body(("plain",)).get_content()
    assert [p.get_content() for p in message.iter_attachments()] == [b"%PDF plan" * 100]

    final = compose_form(web, f"/mail/compose?draft={answer['uid']}")
    final.update(body="定稿")
    body, kind = multipart([*final.items(), ("keep", str(answer["keep"][0]))], [])
    sent = web.request("POST", "/mail/send", body, {"Content-Type": kind})
    assert sent.url.endswith("done=sent"), sent.text[:300]
    assert drafts(server, user) == []
    with imap_login(server, other) as imap:
        imap.select("INBOX")
        _, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[])")
    got = email.message_from_bytes(data[0][1], policy=email.policy.default)
    assert got["Bcc"] is None and "定稿" in got.get_body(("plain",)).get_content()
    assert [p.get_filename() for p in got.iter_attachments()] == ["计划.pdf"]


def test_drafts_need_no_recipient_but_keep_their_limits(server, user):
    web = WebClient(server)
    web.login(user, PASSWORD, admin=False)
    fields = compose_form(web)
    fields.update(subject="just an idea", body="later")
    auto = web.request("POST", "/mail/draft", urllib.parse.urlencode(fields).encode(),
                       {"Content-Type": "application/x-www-form-urlencoded"})
    assert auto.status == 200 and json.loads(auto.text)["keep"] == []
    [(_flags, raw)] = drafts(server, user)
    assert b"To:" not in raw.split(b"\r\n\r\n")[0]
    fields.update(subject="two\r\nBcc: victim@example.com")
    bad = web.request("POST", "/mail/draft", urllib.parse.urlencode(fields).encode(),
                      {"Content-Type": "application/x-www-form-urlencoded"})
    assert bad.status == 422 and json.loads(bad.text) == {"error": "bad_text"}
    no_token = web.request("POST", "/mail/draft", urllib.parse.urlencode({"subject": "x"}).encode(),
                           {"Content-Type": "application/x-www-form-urlencoded"})
    assert no_token.status == 403
    assert len(drafts(server, user)) == 1


def test_a_draft_keeps_its_priority_receipt_request_and_sending_time(server, user):
    web = WebClient(server)
    web.login(user, PASSWORD, admin=False)
    fields = compose_form(web)
    fields.update(to="boss@plant.example", subject="options", body="x", priority="high", receipt="on",
                  send_at="2030-01-02T09:30")
    auto = web.request("POST", "/mail/draft", urllib.parse.urlencode(fields).encode(),
                       {"Content-Type": "application/x-www-form-urlencoded"})
    uid = json.loads(auto.text)["uid"]
    page = web.get(f"/mail/compose?draft={uid}").text
    assert '<option value="high" selected' in page and 'name="receipt" checked' in page
    assert 'name="send_at" value="2030-01-02T09:30"' in page and '<details id="options" open' in page
    [(_flags, raw)] = drafts(server, user)
    head = raw.split(b"\r\n\r\n")[0]
    assert b"X-Priority: 1" in head and b"Disposition-Notification-To:" in head and b"X-Dizimail-Send-At:" in head
