"""The client side of SMTP, sans-IO: replies split or pipelined, DATA transparency (RFC 5321 §4.5.2)."""

from __future__ import annotations

import pytest

from dizimail.codec.smtp_client import DataEncoder, ReplyError, ReplyParser, parse_ehlo, xtext
from dizimail.services.queue.dsn import status_of, wants


def test_pipelined_replies_in_one_read_all_come_out():
    replies = ReplyParser().feed(b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 <x@y>: unknown\r\n354 go\r\n")
    assert [r.code for r in replies] == [250, 250, 550, 354]
    assert replies[2].enhanced == "5.1.1" and replies[2].permanent and not replies[2].positive


def test_a_multiline_reply_split_anywhere_is_assembled():
    parser = ReplyParser()
    wire = b"250-mx.example Hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 STARTTLS\r\n"
    out = []
    for i in range(len(wire)):
        out += parser.feed(wire[i:i + 1])
    [reply] = out
    assert parse_ehlo(reply) == {"PIPELINING": "", "SIZE": "1000", "STARTTLS": ""}


@pytest.mark.parametrize("bad", [b"hello\r\n", b"25\r\n", b"250-a\r\n251 b\r\n", b"999 x\r\n", b"250x\r\n",
                                 b"2" * 5000])
def test_garbage_is_a_reply_error_not_a_crash(bad):
    with pytest.raises(ReplyError):
        ReplyParser().feed(bad)


def test_enhanced_code_is_derived_when_the_server_sends_none():
    [reply] = ReplyParser().feed(b"451 try later\r\n")
    assert reply.enhanced == "4.0.0" and str(reply) == "451 try later"


def encode(*chunks: bytes) -> bytes:
    enc = DataEncoder()
    return b"".join(enc.feed(c) for c in chunks) + enc.end()


def test_dots_at_line_starts_are_doubled_even_across_chunks():
    assert encode(b".one\r\n", b"two\r\n.", b"three\r\n") == b"..one\r\ntwo\r\n..three\r\n.\r\n"
    assert encode(b"a\r", b"\n.b\r\n") == b"a\r\n..b\r\n.\r\n"


def test_bare_line_ends_become_crlf_and_the_end_is_added():
    assert encode(b"a\nb\rc") == b"a\r\nb\r\nc\r\n.\r\n"
    assert encode(b"x\r\n", b"") == b"x\r\n.\r\n"


def test_a_lone_dot_line_cannot_end_the_message_early():
    assert encode(b"a\r\n.\r\nb\r\n") == b"a\r\n..\r\nb\r\n.\r\n"


def test_xtext_escapes_plus_equals_and_non_ascii():
    assert xtext("a+b=c") == "a+2Bb+3Dc"
    assert xtext("电") == "+E7+94+B5"


def test_dsn_notify_defaults_and_never():
    assert wants(None, "failed") and wants(None, "delayed") and not wants(None, "delivered")
    assert not wants("NEVER", "failed")
    assert wants("SUCCESS,FAILURE", "delivered") and not wants("SUCCESS", "delayed")
    assert status_of("550 5.1.1 <x>: no", "5.0.0") == "5.1.1"
    assert status_of("Connection refused", "4.0.0") == "4.0.0"
