"""DSNs built with the stdlib email package: hostile values stay inside their fields (issue 9 §3)."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

from dizimail.services.queue.dsn import RecipientStatus, build_dsn

ORIGINAL = b"Subject: hi\r\nMessage-ID: <o@x.test>\r\n\r\n8-bit body \xe4\xb8\xad\r\n"
REMOTE_REPLY = "550-5.1.1 The mailbox does not exist\r\n550-5.1.1 " + "lorem ipsum " * 40 + "\r\n550 5.1.1 用户不存在"


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def hostile(**kw: object) -> bytes:
    status = RecipientStatus("bob@b.test", "rfc822;bob+2Bx@b.test", "failed", "5.1.1", REMOTE_REPLY, "mx.b.test")
    args: dict[str, object] = dict(reporting_mta="mx.a.test", sender='"[/x]"@evil.test', queue_id="Q1",
                                   arrival=1_000_000_000, statuses=[status], original=ORIGINAL, ret="HDRS",
                                   envid="env+2B1", now=1_000_000_100)
    args.update(kw)
    return build_dsn(**args)  # type: ignore[arg-type]


def test_dsn_from_hostile_values_has_exactly_the_expected_fields():
    raw = hostile()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    msg = parse(raw)
    assert list(msg.keys()) == ["From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "MIME-Version",
                                "Content-Type"]
    assert msg["To"] == '"[/x]"@evil.test' and msg["Subject"].startswith("退信")
    assert msg.get_content_type() == "multipart/report" and msg.get_param("report-type") == "delivery-status"
    human, status, headers = msg.get_payload()
    text = human.get_content()
    assert "无法投递" in text and "could not be delivered" in text and "用户不存在" in text
    per_message, per_rcpt = status.get_payload()
    assert per_message.items() == [("Reporting-MTA", "dns; mx.a.test"), ("X-Dizimail-Queue-ID", "Q1"),
                                   ("Original-Envelope-Id", "env+1"),
                                   ("Arrival-Date", "Sun, 09 Sep 2001 01:46:40 +0000")]
    flat = " ".join(REMOTE_REPLY.split())
    assert [k for k, _ in per_rcpt.items()] == ["Original-Recipient", "Final-Recipient", "Action", "Status",
                                                "Remote-MTA", "Diagnostic-Code", "Last-Attempt-Date"]
    assert per_rcpt["Original-Recipient"] == "rfc822; bob+x@b.test"
    assert per_rcpt["Action"] == "failed" and per_rcpt["Status"] == "5.1.1"
    assert per_rcpt["Diagnostic-Code"] == f"smtp; {flat}"
    assert headers.get_content_type() == "text/rfc822-headers"
    assert headers.get_payload().replace("\r\n", "\n").strip() == "Subject: hi\nMessage-ID: <o@x.test>"


def test_dsn_values_with_line_breaks_queued_before_validation_cannot_add_fields():
    # Rows queued by an older version may hold xtext that decodes to CR LF: it is flattened, not obeyed.
    status = RecipientStatus("bob@b.test", "rfc822;a+0D+0AAction:+20delivered", "failed", "5.1.1", "550 x\r\nno")
    msg = parse(hostile(statuses=[status], envid="x+0D+0AX-Injected:+20yes"))
    per_message, per_rcpt = msg.get_payload()[1].get_payload()
    assert "X-Injected" not in per_message and per_message["Original-Envelope-Id"] == "x X-Injected: yes"
    assert per_rcpt.get_all("Action") == ["failed"]
    assert per_rcpt["Original-Recipient"] == "rfc822; a Action: delivered"


def test_ret_full_returns_the_original_byte_for_byte():
    raw = hostile(ret="FULL")
    third = parse(raw).get_payload()[2]
    assert third.get_content_type() == "message/rfc822"
    assert ORIGINAL in raw


def test_dsn_to_a_utf8_sender_is_an_smtputf8_message():
    msg = parse(hostile(sender="用户@例子.测试"))
    assert msg["To"] == "用户@例子.测试"
