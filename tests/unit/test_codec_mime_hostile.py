"""Hostile messages: the MIME codecs never raise and stay linear (CONVENTIONS habit 9)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dizimail.codec.mime import (
    MAX_DEPTH,
    MAX_PARTS,
    Part,
    addresses,
    binary,
    body_text,
    bodystructure,
    envelope,
    header_text,
    parse_structure,
    section,
)

FRAGMENTS = [
    b"",
    b"--a",
    b"--a--",
    b"--b ",
    b"--b--",
    b"Content-Type: multipart/mixed; boundary=a",
    b'Content-Type: multipart/alternative; boundary="b"',
    b"Content-Type: multipart/digest; boundary=a",
    b"Content-Type: message/rfc822",
    b"Content-Type: text/html; charset=gb2312",
    b"Content-Type: text/plain; name*0*=utf-8''%E6; name*1*=%8A%A5; charset=\"",
    b"Content-Transfer-Encoding: base64",
    b"Content-Transfer-Encoding: quoted-printable",
    b"Content-Disposition: attachment; filename*=x'y'%ZZ",
    b"Subject: =?gb2312?B?teezp9TL0NDI1bGo?= =?utf-8?Q?=E4?=",
    b"From: a <b@c>, Group: x@y;, (comment",
    b"To: <@r:u@h>, \"unterminated",
    b" folded continuation",
    b"\xff\xfe\xb5\xe7",
    b"aGVsbG8=",
    b"<p>&amp;<script>",
    b"no colon line",
]


def check_offsets(raw: bytes, part: Part) -> None:
    assert 0 <= part.header_start <= part.header_end <= part.body_start <= part.body_end <= len(raw)
    previous = part.body_start
    for child in part.children:
        assert previous <= child.header_start and child.body_end <= part.body_end
        previous = child.body_end
        check_offsets(raw, child)


def exercise(raw: bytes) -> None:
    root = parse_structure(raw)
    check_offsets(raw, root)
    assert bodystructure(raw, structure=root).startswith(b"(")
    assert bodystructure(raw, False, structure=root).endswith(b")")
    assert envelope(raw).startswith(b"(")
    for path in [(), (1,), (2,), (1, 1), (2, 1), (1, 2, 1)]:
        for kind in ("", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"):
            result = section(raw, path, kind, ("subject", "from"), structure=root)
            assert result is None or isinstance(result, bytes)
        binary(raw, path, structure=root)
    for values in header_text(raw).values():
        for value in values:
            addresses(value)
    assert isinstance(body_text(raw, limit=1000, structure=root), str)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    exercise(raw)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=60), st.sampled_from([b"\r\n", b"\n", b"\r"]))
def test_mime_shaped_garbage_never_raises(lines: list[bytes], newline: bytes) -> None:
    exercise(newline.join(lines))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_random_address_text_never_raises(value: str) -> None:
    addresses(value)


def nested_multiparts(levels: int, payload: bytes = b"leaf") -> bytes:
    opening = b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1) for i in range(levels)
    )
    closing = b"".join(b"\r\n--b%d--" % i for i in reversed(range(levels + 1)))
    return b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n" + opening + b"--b%d\r\n\r\n" % levels + payload + closing


def depth(part: Part) -> int:
    level = 0
    while part.children:
        part = part.children[0]
        level += 1
    return level


def test_1000_nested_multiparts_stop_at_the_depth_limit() -> None:
    raw = nested_multiparts(1000)
    root = parse_structure(raw)
    exercise(raw)
    assert depth(root) == MAX_DEPTH
    deepest = root
    while deepest.children:
        deepest = deepest.children[0]
    assert deepest.content_type == "multipart/mixed" and deepest.children == []
    assert bodystructure(raw).count(b'"MIXED"') == MAX_DEPTH + 1


def test_1000_nested_messages_stop_at_the_depth_limit() -> None:
    raw = b"Content-Type: message/rfc822\r\n\r\n" * 1000 + b"Subject: bottom\r\n\r\nleaf"
    root = parse_structure(raw)
    assert depth(root) == MAX_DEPTH
    exercise(raw)
    assert b'"APPLICATION" "OCTET-STREAM"' in bodystructure(raw)  # the unparsed bottom stays valid IMAP


def test_50000_parts_are_capped() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=p\r\n\r\n"
        + b"--p\r\nContent-Type: text/plain\r\n\r\nx\r\n" * 50_000
        + b"--p--\r\n"
    )
    root = parse_structure(raw)
    assert len(root.children) == MAX_PARTS - 1  # the root counts too
    bodystructure(raw, structure=root)
    assert section(raw, (MAX_PARTS - 1,), structure=root) == b"x"
    assert section(raw, (MAX_PARTS,), structure=root) is None


def test_pathological_lines_do_not_raise() -> None:
    cases = [
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n" + b"--xy\r\n" * 200_000,
        b"X: y\r\n" * 100_000 + b"\r\n",
        b"Content-Type: text/html\r\n\r\n" + b"<" * 500_000 + b"<script" * 50_000 + b"<!--" * 50_000,
        b"To: " + b"<@a," * 50_000 + b"\r\nCc: " + b"a:" * 50_000 + b"\r\n\r\n",
        b"Content-Type: text/plain; " + b'a="' * 50_000 + b"(" * 50_000 + b"\r\n\r\n",
        b"Content-Type: text/plain; " + b"a;" * 100_000 + b"a=b " * 100_000 + b"\r\n\r\n",
        b"To: " + b"[" * 100_000 + b"(" * 100_000 + b'"' * 100_000 + b"\r\n\r\n",
        b"Subject: " + b"=?x?B?" * 100_000 + b"\r\n\r\n",
    ]
    for raw in cases:
        exercise(raw)
