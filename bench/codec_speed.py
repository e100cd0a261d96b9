"""Codec figures that unit tests must not assert: IMAP parse time per command, hostile MIME inputs, and
codec/mime against the stdlib email parser on an ordinary multipart message (docs/architecture.md).

    .venv/bin/python bench/codec_speed.py
"""

from __future__ import annotations

import email
import email.policy
import time
import timeit

from dizimail.codec.imap.parser import ImapParser
from dizimail.codec.mime.imap import bodystructure, envelope
from dizimail.codec.mime.structure import parse_structure


def imap_fetch_parse() -> None:
    line = b"a1 UID FETCH 1:100,200:300 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM TO)])\r\n"

    def one() -> None:
        parser = ImapParser()
        parser.feed(line)
        parser.next()
    best = min(timeit.repeat(one, number=500, repeat=5)) / 500
    print(f"IMAP parse of a {len(line)}-byte UID FETCH: {best * 1e6:.1f} µs")


def mime_hostile() -> None:
    cases = {
        "1,000 nested multiparts": b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
                                            for i in range(1000)),
        "50,000 parts": b"Content-Type: multipart/mixed; boundary=p\r\n\r\n"
                        + b"--p\r\nContent-Type: text/plain\r\n\r\nx\r\n" * 50_000 + b"--p--\r\n",
        "200,000 near-boundaries": b"Content-Type: multipart/mixed; boundary=x\r\n\r\n" + b"--xy\r\n" * 200_000,
    }
    for name, raw in cases.items():
        started = time.perf_counter()
        bodystructure(raw, structure=parse_structure(raw))
        print(f"BODYSTRUCTURE of {name} ({len(raw) // 1024} KiB): {(time.perf_counter() - started) * 1000:.0f} ms")


def mime_against_stdlib() -> None:
    """What reading a message costs: our structure + BODYSTRUCTURE + ENVELOPE, against email's parse with
    policy.default walking every part's type and parameters and reading the ENVELOPE headers."""
    msg = (b"From: =?utf-8?b?5byg5LiJ?= <zhang@example.test>\r\nTo: a@b.test, c@d.test\r\n"
           b"Subject: =?gb2312?b?vOzQ3g==?= report\r\nDate: Mon, 1 Dec 2026 10:00:00 +0800\r\nMessage-ID: <x@y>\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n"
           b"Content-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n--b2\r\n"
           b"Content-Type: text/plain; charset=gb2312\r\n\r\n" + b"line of text\r\n" * 200
           + b"--b2\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>" + b"html text " * 300
           + b"</p>\r\n--b2--\r\n--b1\r\nContent-Type: application/pdf; name=a.pdf\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n" + b"QUJD" * 5000 + b"\r\n--b1--\r\n")

    def ours() -> None:
        bodystructure(msg, extensible=True, structure=parse_structure(msg))
        envelope(msg)

    def stdlib() -> None:
        parsed = email.message_from_bytes(msg, policy=email.policy.default)
        for part in parsed.walk():
            part.get_content_type()
            part.get_params()
        for name in ("subject", "from", "to", "date", "message-id"):
            parsed[name]
    a = min(timeit.repeat(ours, number=100, repeat=5)) / 100
    b = min(timeit.repeat(stdlib, number=100, repeat=5)) / 100
    print(f"reading a {len(msg) // 1024} KiB multipart message: codec/mime {a * 1e6:.0f} µs, "
          f"email (policy.default) {b * 1e6:.0f} µs ({b / a:.1f}x)")


if __name__ == "__main__":
    imap_fetch_parse()
    mime_hostile()
    mime_against_stdlib()
