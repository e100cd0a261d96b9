"""Codec figures that unit tests must not assert: IMAP parse time per command, hostile MIME inputs.

    .venv/bin/python bench/codec_speed.py
"""

from __future__ import annotations

import time
import timeit

from dizimail.codec.imap.parser import ImapParser
from dizimail.codec.mime.imap import bodystructure
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


if __name__ == "__main__":
    imap_fetch_parse()
    mime_hostile()
