"""Users' Sieve scripts at local delivery (issue #12), over real SMTP and IMAP: where each copy goes, what
the script sends away, and that nothing a script does loses a message."""

from __future__ import annotations

import email
import smtplib
from email.header import decode_header, make_header

import pytest

from conftest import PASSWORD, dizimail_cli
from dizimail.codec.imap.utf7 import encode_mutf7
from helpers import api, fetch_all, imap_login, token, wait_for

OUTSIDE = "friend@outside.test"


def put(server, user: str, script: str) -> None:
    async def go(s):
        account = await s.accounts.get_user(user)
        await s.sieve.put(account.id, "rules", script, activate=True)
    server.call(go)


def send(server, rcpts: list[str], subject: str, sender: str = OUTSIDE, body: str = "hello\r\n") -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        s.sendmail(sender, rcpts, f"From: {sender}\r\nTo: {rcpts[0]}\r\nSubject: {subject}\r\n\r\n{body}".encode())


def folder(server, user: str, name: str) -> list[tuple[bytes, bytes]]:
    """(flags, message) of each message in ``name``."""
    with imap_login(server, user) as imap:
        status, _ = imap.select(f'"{encode_mutf7(name)}"', readonly=True)
        assert status == "OK", name
        _, ids = imap.search(None, "ALL")
        out = []
        for i in ids[0].split():
            _, data = imap.fetch(i, "(FLAGS BODY.PEEK[])")
            out.append((data[0][0], data[0][1]))
        return out


def subjects(messages: list[bytes]) -> list[str]:
    return [str(make_header(decode_header(email.message_from_bytes(m)["Subject"] or ""))) for m in messages]


def test_fileinto_a_chinese_folder_made_with_create_and_flags(server, user):
    put(server, user, 'require ["fileinto", "mailbox", "imap4flags"];\n'
                      'if header :contains "subject" "检修" {\n'
                      '  fileinto :create :flags "\\\\Seen $工单" "工作/检修";\n'  # a non-atom keyword is dropped
                      '}\n')
    send(server, [user], "=?utf-8?b?5LiL5ZGo5qOA5L+u6K6h5YiS?=")  # 下周检修计划
    send(server, [user], "lunch")
    filed = folder(server, user, "工作/检修")
    assert len(filed) == 1 and b"\\Seen" in filed[0][0] and b"$" not in filed[0][0]
    assert subjects([m for _, m in filed]) == ["下周检修计划"]
    assert subjects(fetch_all(server, user)) == ["lunch"]


def test_fileinto_a_missing_folder_keeps_the_message_in_inbox_and_tells_the_user(server, user):
    put(server, user, 'require "fileinto";\nfileinto "Nowhere";\n')
    send(server, [user], "where does it go")
    send(server, [user], "and another")
    got = subjects(fetch_all(server, user))
    # Both messages are kept; one notice (at most one an hour per reason), in both languages.
    assert sorted(got) == sorted(["where does it go", "and another", "邮件规则出错 / Your mail rules failed"])
    notice = next(m for m in fetch_all(server, user) if b"Auto-Submitted: auto-generated" in m)
    text = email.message_from_bytes(notice).get_payload(decode=True).decode()
    assert "Nowhere" in text and "收件箱" in text and "INBOX" in text


def test_discard_accepts_and_stores_nothing(server, user):
    put(server, user, 'if header :is "subject" "drop me" { discard; }\n')
    send(server, [user], "drop me")
    send(server, [user], "keep me")
    assert subjects(fetch_all(server, user)) == ["keep me"]


def test_reject_sends_a_bilingual_rejection_to_the_sender(server, user):
    sender = server.add_user(user.split("@")[0] + "s")
    put(server, user, 'require "reject";\nif header :contains "subject" "sales" { reject "不接受推销 no sales, thanks"; }\n')
    send(server, [user], "sales offer", sender=sender)
    assert fetch_all(server, user) == []
    bounces = wait_for(lambda: fetch_all(server, sender), what="the rejection")
    report = email.message_from_bytes(bounces[0])
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "disposition-notification"
    human = report.get_payload()[0].get_payload(decode=True).decode()
    assert "不接受推销 no sales, thanks" in human and "rejected" in human and "拒收" in human
    assert "deleted" in report.get_payload()[1].as_string()
    assert b"Subject: sales offer" in bounces[0]


def test_ereject_refuses_in_the_smtp_conversation(server, user):
    put(server, user, 'require "ereject";\nereject "go away";\n')
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            s.sendmail(OUTSIDE, [user], b"Subject: x\r\n\r\nx\r\n")
    assert refused.value.smtp_code == 550
    assert fetch_all(server, user) == []


def test_redirect_to_another_user_and_copy_and_back_to_oneself(server, user):
    other = server.add_user(user.split("@")[0] + "o")
    put(server, user, f'require "copy";\nredirect :copy "{other}";\nredirect "{user}";\n')
    send(server, [user], "passed along")
    got = wait_for(lambda: fetch_all(server, other), what="the redirected copy")
    assert subjects(got) == ["passed along"]
    assert f"Delivered-To: {user}".encode() in got[0]
    # The redirect back to the user comes in marked as delivered to them already: not filtered again, kept once;
    # :copy kept nothing more; the implicit keep was cancelled by the redirect.
    mine = wait_for(lambda: fetch_all(server, user), what="the copy redirected to oneself")
    assert subjects(mine) == ["passed along"]


def test_a_script_passing_its_limits_keeps_the_message(server, user):
    put(server, user, "".join(f'redirect "r{i}@outside.test";\n' for i in range(6)))  # 4 at most
    send(server, [user], "too many redirects")
    got = subjects(fetch_all(server, user))
    assert "too many redirects" in got and "邮件规则出错 / Your mail rules failed" in got


def test_only_the_active_script_runs(server, user):
    async def go(s):
        account = await s.accounts.get_user(user)
        await s.sieve.put(account.id, "off", "discard;\n")
    server.call(go)
    send(server, [user], "no rules")
    assert subjects(fetch_all(server, user)) == ["no rules"]
    assert PASSWORD


def test_cli_stores_checks_and_activates_scripts(server, user, tmp_path):
    bad = tmp_path / "bad.sieve"
    bad.write_text('require "fileinto";\nif header :is "subject" "x" {\n  fileinto "a"\n}\n', encoding="utf-8")
    out = dizimail_cli(server.config_file, "sieve", "put", user, "bad", str(bad), check=False)
    assert out.returncode == 1 and "line 4" in out.stderr, out.stderr
    good = tmp_path / "good.sieve"
    good.write_text('require "fileinto";\nfileinto "INBOX";\n', encoding="utf-8")
    dizimail_cli(server.config_file, "sieve", "put", user, "好规则", str(good), "--activate")
    listed = dizimail_cli(server.config_file, "sieve", "list", user, "--json").stdout
    assert '"好规则"' in listed and '"active": true' in listed
    assert dizimail_cli(server.config_file, "sieve", "get", user, "好规则").stdout == good.read_text()
    refused = dizimail_cli(server.config_file, "sieve", "delete", user, "好规则", check=False)
    assert refused.returncode != 0
    dizimail_cli(server.config_file, "sieve", "activate", user)
    dizimail_cli(server.config_file, "sieve", "delete", user, "好规则")
    assert dizimail_cli(server.config_file, "sieve", "list", user, "--json").stdout.strip() == "[]"
    checked = dizimail_cli(server.config_file, "sieve", "check", user, str(bad), check=False)
    assert checked.returncode == 1 and "line 4" in checked.stderr
    audit = dizimail_cli(server.config_file, "audit", "list", "--json").stdout
    assert "sieve.put" in audit and "sieve.delete" in audit


def test_vacation_answers_a_person_once_and_never_a_list(server, user):
    writer = server.add_user(user.split("@")[0] + "w")
    put(server, user, 'require ["vacation"];\n'
                      'vacation :days 7 :subject "不在办公室 Out of office" "我在休假，下周一回来。I am back on Monday.";\n')
    for subject in ("first", "second"):
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
            s.sendmail(writer, [user], f"From: {writer}\r\nTo: {user}\r\nSubject: {subject}\r\n"
                                       f"Message-ID: <{subject}@example.test>\r\n\r\nhi\r\n".encode())
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:  # a list's mail gets no answer
        s.sendmail(writer, [user], f"From: {writer}\r\nTo: {user}\r\nList-Id: <news.example.test>\r\n"
                                   "Subject: list\r\n\r\nnews\r\n".encode())
    replies = wait_for(lambda: fetch_all(server, writer), what="the vacation reply")
    assert len(subjects(fetch_all(server, user))) == 3  # the user's mail is kept
    assert len(replies) == 1, subjects(replies)
    reply = email.message_from_bytes(replies[0])
    assert subjects(replies) == ["不在办公室 Out of office"]
    assert reply["Auto-Submitted"].startswith("auto-replied") and reply["In-Reply-To"] == "<first@example.test>"
    assert reply["From"] == user and b"Return-Path: <>" in replies[0]
    assert "下周一" in reply.get_payload(decode=True).decode()


def test_vacation_does_not_answer_mail_not_addressed_to_the_user(server, user):
    writer = server.add_user(user.split("@")[0] + "b")
    put(server, user, 'require "vacation";\nvacation "away";\n')
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:  # a Bcc: the user is not named
        s.sendmail(writer, [user], f"From: {writer}\r\nTo: someone@outside.test\r\nSubject: bcc\r\n\r\nhi\r\n".encode())
    assert subjects(fetch_all(server, user)) == ["bcc"]
    assert fetch_all(server, writer) == []


def test_body_and_match_variables_file_a_chinese_multipart_message(server, user):
    put(server, user, 'require ["fileinto", "mailbox", "body", "variables"];\n'
                      'if allof (body :text :contains "检修", header :matches "subject" "[*] *") {\n'
                      '  fileinto :create "项目/${1}";\n}\n')
    message = (b"From: plant@outside.test\r\nTo: " + user.encode() + b"\r\nSubject: [unit-3] schedule\r\n"
               b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n"
               b"Content-Type: text/plain; charset=gb2312\r\nContent-Transfer-Encoding: base64\r\n\r\n"
               b"w/fM7Lzs0N4=\r\n--b--\r\n")  # 明天检修
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        s.sendmail(OUTSIDE, [user], message)
    assert subjects([m for _, m in folder(server, user, "项目/unit-3")]) == ["[unit-3] schedule"]


def test_the_api_manages_a_users_own_scripts_and_says_where_one_is_wrong(server, user):
    mine = token(server, "--role", "user", "--user", user)
    other = server.add_user(user.split("@")[0] + "x")
    bad = api(server, "PUT", f"/api/v1/users/{user}/sieve/rules", mine, {"script": 'require "fileinto";\nfileinto "x"\n'})
    assert bad[0] == 422 and bad[2]["valid"] is False and bad[2]["line"] == 3, bad
    good = api(server, "PUT", f"/api/v1/users/{user}/sieve/规则", mine,
               {"script": 'if header :is "subject" "drop" { discard; }\n', "active": True})
    assert good[0] == 200 and good[2]["name"] == "规则" and good[2]["active"] is True, good
    assert api(server, "GET", f"/api/v1/users/{user}/sieve", mine)[2][0]["name"] == "规则"
    assert "discard" in api(server, "GET", f"/api/v1/users/{user}/sieve/规则", mine)[2]["script"]
    assert api(server, "GET", f"/api/v1/users/{other}/sieve", mine)[0] == 404  # not its own
    assert api(server, "DELETE", f"/api/v1/users/{user}/sieve/规则", mine)[0] == 409  # the active one
    send(server, [user], "drop")
    assert fetch_all(server, user) == []
    assert api(server, "PUT", f"/api/v1/users/{user}/sieve-active", mine, {"name": None})[0] == 204
    assert api(server, "POST", f"/api/v1/users/{user}/sieve/规则/rename", mine, {"name": "old"})[0] == 204
    assert api(server, "DELETE", f"/api/v1/users/{user}/sieve/old", mine)[0] == 204
    assert api(server, "POST", "/api/v1/sieve/check", mine, {"script": "keep;"})[2] == {
        "valid": True, "error": None, "line": None, "column": None}
    assert api(server, "POST", "/api/v1/sieve/check", mine, {"script": "bogus;"})[0] == 422
