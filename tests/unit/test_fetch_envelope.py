"""The trace lines a gateway's holding box puts before each held message (services.fetch.split_envelope)."""

from dizimail.services.fetch import split_envelope


def test_the_envelope_is_read_from_the_leading_trace_lines():
    raw = b"Return-Path: <a@outside.example>\r\nDelivered-To: staff@example.test\r\nSubject: hi\r\n\r\nbody\r\n"
    assert split_envelope(raw) == ("a@outside.example", "staff@example.test", b"Subject: hi\r\n\r\nbody\r\n")
    assert split_envelope(b"Return-Path: <>\r\nX: y\r\n\r\n") == ("", None, b"X: y\r\n\r\n")
    assert split_envelope(b"Subject: no trace\r\n\r\n") == ("", None, b"Subject: no trace\r\n\r\n")


def test_a_long_run_of_blanks_in_a_trace_line_is_read_once():
    """Fetched mail comes from anyone who could write to the remote mailbox. A trace line of blanks before
    an end that fails (``>>``) was split in every way between two overlapping runs (quadratic: 64 KiB took
    98 s); these 2,000,000 blanks would have taken days. The line is then not a trace line."""
    raw = b"Return-Path:" + b" " * 2_000_000 + b">>\r\nSubject: x\r\n\r\n"
    sender, rcpt, rest = split_envelope(raw)
    assert (sender, rcpt, rest) == ("", None, raw)
    assert split_envelope(b"Delivered-To:" + b" \t" * 500_000 + b"<u@example.test>\r\n\r\n")[1] == "u@example.test"
