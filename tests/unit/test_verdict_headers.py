"""Verdict headers (services.policy.gateway): counted while the message streams in, found and removed
byte for byte, and only those of our trust boundary among Authentication-Results."""

from __future__ import annotations

from dizimail.codec.body import TraceCounter
from dizimail.services.policy.gateway import authserv_id, strip_fields, verdict_fields

MESSAGE = (b"Received: from a by b; now\r\n"
           b"Authentication-Results: (comment) Mail.Example.Test; spf=pass\r\n"
           b"X-Spam-Flag: NO\r\n"
           b"Authentication-Results: other.org;\r\n\tdkim=pass\r\n"
           b"X-Spam-Report: a;\r\n\tb\r\n"
           b"Subject: x-spam-score: not a field\r\n\r\n"
           b"X-Spam-Score: 0 (in the body: not a field)\r\n")


def test_fields_are_counted_across_any_chunk_boundary():
    for size in (1, 2, 3, 7, 16, len(MESSAGE)):
        trace = TraceCounter("mail.example.test")
        for i in range(0, len(MESSAGE), size):
            trace.feed(MESSAGE[i:i + size])
        assert (trace.received, trace.verdicts) == (1, 4), size


def test_only_our_authserv_ids_and_every_x_spam_field_are_removed():
    spans = verdict_fields(MESSAGE, frozenset({"mail.example.test"}))
    assert strip_fields(MESSAGE, spans) == (
        b"Received: from a by b; now\r\n"
        b"Authentication-Results: other.org;\r\n\tdkim=pass\r\n"
        b"Subject: x-spam-score: not a field\r\n\r\n"
        b"X-Spam-Score: 0 (in the body: not a field)\r\n")


def test_authserv_id_is_read_after_comments():
    assert authserv_id(b" (x) (y) GW.example.test 1; spf=pass") == "gw.example.test"
    assert authserv_id(b" ;") == ""
