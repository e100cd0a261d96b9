"""IMAP ENVELOPE, BODY/BODYSTRUCTURE, BODY[section] and BINARY (RFC 3501 §6.4.5, §7.4.2; RFC 3516)."""

from __future__ import annotations

import pytest

from dizimail.codec.mime import binary, bodystructure, envelope, imap_string, parse_structure, section

# The single-part example of RFC 3501 §7.4.2: 3028 octets in 92 lines.
CLASSIC = b"Content-Type: text/plain; charset=US-ASCII\r\n\r\n" + (b"x" * 31 + b"\r\n") * 91 + b"y" * 23 + b"\r\n"

# The multipart example of RFC 3501 §7.4.2, rebuilt octet for octet.
RFC_MIXED = (
    b'Content-Type: MULTIPART/MIXED; BOUNDARY="=_rfc3501"\r\n'
    b"\r\n"
    b"--=_rfc3501\r\n"
    b"Content-Type: text/plain; charset=US-ASCII\r\n"
    b"\r\n" + (b"a" * 48 + b"\r\n") * 22 + b"b" * 50 + b"\r\n"
    b"\r\n"
    b"--=_rfc3501\r\n"
    b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII; NAME=cc.diff\r\n"
    b"Content-ID: <960723163407.20117h@cac.washington.edu>\r\n"
    b"Content-Description: Compiler diff\r\n"
    b"Content-Transfer-Encoding: BASE64\r\n"
    b"\r\n" + (b"A" * 60 + b"\r\n") * 73 + b"A" * 28 + b"\r\n"
    b"--=_rfc3501--\r\n"
)

ALTERNATIVE = (
    b"From: alice@example.com\r\n"
    b'Content-Type: multipart/alternative; boundary="=_b1"\r\n'
    b"\r\n"
    b"--=_b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hello\r\n"
    b"world\r\n"
    b"\r\n"
    b"--=_b1\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"<p>Hello=20<b>world</b></p>\r\n"
    b"--=_b1--\r\n"
)

MIXED = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: Bob <bob@example.com>\r\n"
    b"Subject: report\r\n"
    b"Date: Tue, 2 Jan 2024 09:00:00 +0800\r\n"
    b"Message-ID: <r1@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=mix\r\n"
    b"\r\n"
    b"--mix\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"See the report.\r\n"
    b"\r\n"
    b"--mix\r\n"
    b'Content-Type: application/pdf; name="report.pdf"\r\n'
    b"Content-Disposition: attachment; filename*=UTF-8''%E6%8A%A5%E5%91%8A.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0xLjQK\r\n"
    b"--mix--\r\n"
)

SECTIONED = (
    b"From: a@example.com\r\n"
    b"Subject: Fwd: q3\r\n"
    b"Content-Type: multipart/mixed; boundary=outer\r\n"
    b"\r\n"
    b"--outer\r\n"
    b"Content-Type: multipart/alternative; boundary=alt\r\n"
    b"\r\n"
    b"--alt\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"plain text\r\n"
    b"--alt\r\n"
    b"Content-Type: text/html\r\n"
    b"\r\n"
    b"<p>html text</p>\r\n"
    b"--alt--\r\n"
    b"\r\n"
    b"--outer\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"From: c@example.com\r\n"
    b"Subject: q3\r\n"
    b"Content-Type: multipart/mixed; boundary=inner\r\n"
    b"\r\n"
    b"--inner\r\n"
    b"\r\n"
    b"inner text\r\n"
    b"--inner\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAEC\r\n"
    b"--inner--\r\n"
    b"--outer--\r\n"
)


# ---------------------------------------------------------------- BODY / BODYSTRUCTURE


def test_body_of_the_rfc3501_single_part_example() -> None:
    assert bodystructure(CLASSIC, extensible=False) == b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92)'
    assert bodystructure(CLASSIC) == b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92 NIL NIL NIL NIL)'


def test_body_of_the_rfc3501_multipart_example() -> None:
    assert bodystructure(RFC_MIXED, extensible=False) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23)'
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") "<960723163407.20117h@cac.washington.edu>"'
        b' "Compiler diff" "BASE64" 4554 73) "MIXED")'
    )
    assert bodystructure(RFC_MIXED) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23 NIL NIL NIL NIL)'
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") "<960723163407.20117h@cac.washington.edu>"'
        b' "Compiler diff" "BASE64" 4554 73 NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "=_rfc3501") NIL NIL NIL)'
    )


def test_simple_message_without_content_type_gets_the_rfc2045_default() -> None:
    raw = b"Subject: hi\r\n\r\nHello\r\nworld\r\n"
    assert bodystructure(raw) == b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 14 2 NIL NIL NIL NIL)'
    assert bodystructure(raw, False) == b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 14 2)'


def test_bodystructure_of_multipart_alternative() -> None:
    assert bodystructure(ALTERNATIVE) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 14 2 NIL NIL NIL NIL)'
        b'("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 27 0 NIL NIL NIL NIL)'
        b' "ALTERNATIVE" ("BOUNDARY" "=_b1") NIL NIL NIL)'
    )


def test_bodystructure_of_mixed_with_base64_attachment_and_rfc2231_filename() -> None:
    assert bodystructure(MIXED) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 17 1 NIL NIL NIL NIL)'
        b'("APPLICATION" "PDF" ("NAME" "report.pdf") NIL NIL "BASE64" 12 NIL'
        b" (\"ATTACHMENT\" (\"FILENAME*\" \"utf-8''%E6%8A%A5%E5%91%8A.pdf\")) NIL NIL)"
        b' "MIXED" ("BOUNDARY" "mix") NIL NIL NIL)'
    )
    assert bodystructure(MIXED, False) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 17 1)'
        b'("APPLICATION" "PDF" ("NAME" "report.pdf") NIL NIL "BASE64" 12) "MIXED")'
    )


def test_bodystructure_of_message_rfc822_has_envelope_body_and_lines() -> None:
    embedded = SECTIONED[SECTIONED.index(b"From: c@") : SECTIONED.index(b"\r\n--outer--")]
    assert (len(embedded), embedded.count(b"\n")) == (207, 12)
    envelope_c = b'(NIL "q3" ((NIL NIL "c" "example.com")) ((NIL NIL "c" "example.com")) ((NIL NIL "c" "example.com")) NIL NIL NIL NIL NIL)'
    assert bodystructure(SECTIONED) == (
        b'((("TEXT" "PLAIN" NIL NIL NIL "7BIT" 10 0 NIL NIL NIL NIL)'
        b'("TEXT" "HTML" NIL NIL NIL "7BIT" 16 0 NIL NIL NIL NIL) "ALTERNATIVE" ("BOUNDARY" "alt") NIL NIL NIL)'
        b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 207 ' + envelope_c + b" "
        b'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 10 0 NIL NIL NIL NIL)'
        b'("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" 4 NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "inner") NIL NIL NIL)'
        b' 12 NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "outer") NIL NIL NIL)'
    )
    assert bodystructure(SECTIONED, False) == (
        b'((("TEXT" "PLAIN" NIL NIL NIL "7BIT" 10 0)("TEXT" "HTML" NIL NIL NIL "7BIT" 16 0) "ALTERNATIVE")'
        b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 207 ' + envelope_c + b" "
        b'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 10 0)'
        b'("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" 4) "MIXED") 12) "MIXED")'
    )


def test_extension_fields_language_location_md5_description() -> None:
    raw = (
        b"Content-Type: text/plain; charset=utf-8; format=flowed\r\n"
        b"Content-ID: <c1@example.com>\r\n"
        b'Content-Description: a "quoted" note\r\n'
        b"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n"
        b"Content-Disposition: inline\r\n"
        b"Content-Language: en, fi\r\n"
        b"Content-Location: http://example.com/n.txt\r\n"
        b"\r\n"
        b"hi\r\n"
    )
    assert bodystructure(raw) == (
        b'("TEXT" "PLAIN" ("CHARSET" "utf-8" "FORMAT" "flowed") "<c1@example.com>" "a \\"quoted\\" note" "7BIT" 4 1'
        b' "Q2hlY2sgSW50ZWdyaXR5IQ==" ("INLINE" NIL) ("en" "fi") "http://example.com/n.txt")'
    )


def test_multipart_without_parts_gets_an_empty_text_part_and_encoded_rfc822_is_opaque() -> None:
    assert bodystructure(b"Content-Type: multipart/mixed\r\n\r\nno boundary\r\n", False) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0) "MIXED")'
    )
    encoded = b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogeA0KDQp5\r\n"
    assert bodystructure(encoded, False) == b'("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" 22)'
    assert binary(encoded, (1,)) == b"Subject: x\r\n\r\ny"


def test_8bit_parameters_are_sent_in_rfc2231_form() -> None:
    raw = 'Content-Type: text/plain; charset=utf-8; name="报告.txt"\r\n\r\nx'.encode()
    assert bodystructure(raw, False) == b'("TEXT" "PLAIN" ("CHARSET" "utf-8" "NAME*" "utf-8\'\'%E6%8A%A5%E5%91%8A.txt") NIL NIL "7BIT" 1 0)'


# ---------------------------------------------------------------- ENVELOPE


def test_envelope_with_groups_defaults_and_missing_fields() -> None:
    raw = (
        b'From: "Doe, John" <john@example.com>\r\n'
        b"Sender: \r\n"
        b"To: undisclosed-recipients:;\r\n"
        b"Cc: Team: a@x.org, B <b@y.org>;, c@z.org\r\n"
        b"Subject: =?utf-8?B?5L2g5aW9?=\r\n"
        b"In-Reply-To: <p@example.com>\r\n"
        b"\r\n"
        b"body\r\n"
    )
    john = b'(("Doe, John" NIL "john" "example.com"))'
    assert envelope(raw) == (
        b'(NIL "=?utf-8?B?5L2g5aW9?=" ' + john + b" " + john + b" " + john + b" "
        b'((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) '
        b'((NIL NIL "Team" NIL)(NIL NIL "a" "x.org")("B" NIL "b" "y.org")(NIL NIL NIL NIL)(NIL NIL "c" "z.org")) '
        b'NIL "<p@example.com>" NIL)'
    )


def test_envelope_of_a_full_header() -> None:
    raw = (
        b"Date: Tue, 2 Jan 2024 09:00:00 +0800\r\n"
        b"From: Alice <alice@example.com>\r\n"
        b"Sender: list-bounces@example.org\r\n"
        b"Reply-To: list@example.org\r\n"
        b"To: Bob <bob@example.com>,\r\n carol@example.com\r\n"
        b"Bcc: d@example.com\r\n"
        b"Subject: folded\r\n subject\r\n"
        b"Message-ID: <m1@example.com>\r\n"
        b"\r\n"
    )
    assert envelope(raw) == (
        b'("Tue, 2 Jan 2024 09:00:00 +0800" "folded subject" (("Alice" NIL "alice" "example.com"))'
        b' ((NIL NIL "list-bounces" "example.org")) ((NIL NIL "list" "example.org"))'
        b' (("Bob" NIL "bob" "example.com")(NIL NIL "carol" "example.com")) NIL'
        b' ((NIL NIL "d" "example.com")) NIL "<m1@example.com>")'
    )


def test_envelope_of_an_empty_message_is_all_nil() -> None:
    assert envelope(b"") == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"


def test_envelope_addresses_routes_comments_and_unqualified_names() -> None:
    raw = b"To: <@relay.example,@r2.example:user@host.example>, user2@host (Real Name), root, J. Q. Public <jqp@x.org>\r\n\r\n"
    assert envelope(raw).split(b" ", 5)[5].startswith(
        b'((NIL "@relay.example,@r2.example" "user" "host.example")("Real Name" NIL "user2" "host")'
        b'(NIL NIL "root" "MISSING_DOMAIN")("J. Q. Public" NIL "jqp" "x.org")) NIL NIL NIL NIL)'
    )


def test_envelope_keeps_raw_8bit_values_in_literals() -> None:
    raw = "Subject: 你好\r\nFrom: 张三 <zhang@example.cn>\r\n\r\n".encode()
    assert envelope(raw) == (
        b'(NIL {6}\r\n' + "你好".encode() + b" (({6}\r\n" + "张三".encode() + b' NIL "zhang" "example.cn")) '
        b"(({6}\r\n" + "张三".encode() + b' NIL "zhang" "example.cn")) '
        b"(({6}\r\n" + "张三".encode() + b' NIL "zhang" "example.cn")) NIL NIL NIL NIL NIL)'
    )
    assert envelope(raw, utf8=True).startswith('(NIL "你好" (("张三" NIL'.encode())
    gbk = b"Subject: " + "你好".encode("gbk") + b"\r\n\r\n"
    assert envelope(gbk, utf8=True) == b"(NIL {4}\r\n" + "你好".encode("gbk") + b" NIL NIL NIL NIL NIL NIL NIL NIL)"


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (None, b"NIL"),
        (b"", b'""'),
        (b'say "hi" \\o/', b'"say \\"hi\\" \\\\o/"'),
        (b"a\r\nb", b"{4}\r\na\r\nb"),
        (b"nul\x00", b'"nul"'),
        ("é", b"{2}\r\n\xc3\xa9"),
        (b"x" * 1001, b"{1001}\r\n" + b"x" * 1001),
    ],
)
def test_imap_string_quotes_or_uses_literals(value: bytes | str | None, wire: bytes) -> None:
    assert imap_string(value) == wire


# ---------------------------------------------------------------- sections


def test_sections_of_a_multipart_message() -> None:
    assert section(SECTIONED, ()) == SECTIONED
    assert section(SECTIONED, (), "TEXT") == SECTIONED[SECTIONED.index(b"--outer\r\n") :]
    assert section(SECTIONED, (), "HEADER") == SECTIONED[: SECTIONED.index(b"\r\n\r\n") + 4]
    assert section(SECTIONED, (), "HEADER.FIELDS", ("SUBJECT",)) == b"Subject: Fwd: q3\r\n\r\n"
    assert section(SECTIONED, (), "header.fields.not", ("subject", "content-type")) == b"From: a@example.com\r\n\r\n"
    assert section(SECTIONED, (), "HEADER.FIELDS", ("X-None",)) == b"\r\n"
    assert section(SECTIONED, (1,)) == (
        b"--alt\r\nContent-Type: text/plain\r\n\r\nplain text\r\n"
        b"--alt\r\nContent-Type: text/html\r\n\r\n<p>html text</p>\r\n--alt--\r\n"
    )
    assert section(SECTIONED, (1, 2)) == b"<p>html text</p>"
    assert section(SECTIONED, (1, 2), "MIME") == b"Content-Type: text/html\r\n\r\n"
    assert section(SECTIONED, (2,), "MIME") == b"Content-Type: message/rfc822\r\n\r\n"


def test_sections_of_an_encapsulated_message() -> None:
    embedded = SECTIONED[SECTIONED.index(b"From: c@") : SECTIONED.index(b"\r\n--outer--")]
    assert section(SECTIONED, (2,)) == embedded
    assert section(SECTIONED, (2,), "HEADER") == (
        b"From: c@example.com\r\nSubject: q3\r\nContent-Type: multipart/mixed; boundary=inner\r\n\r\n"
    )
    assert section(SECTIONED, (2,), "HEADER.FIELDS", ("Subject",)) == b"Subject: q3\r\n\r\n"
    assert section(SECTIONED, (2,), "TEXT") == embedded[embedded.index(b"--inner") :]
    assert section(SECTIONED, (2, 1)) == b"inner text"
    assert section(SECTIONED, (2, 1), "MIME") == b"\r\n"
    assert section(SECTIONED, (2, 2), "MIME") == (
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("part", "kind"),
    [((3,), ""), ((0,), ""), ((1, 1, 1), ""), ((2, 3), ""), ((1,), "HEADER"), ((1, 1), "TEXT"), ((), "MIME"), ((), "BOGUS")],
)
def test_nonexistent_sections_are_none(part: tuple[int, ...], kind: str) -> None:
    assert section(SECTIONED, part, kind) is None


def test_sections_of_a_single_part_message() -> None:
    raw = b"Subject: a\r\n b\r\nX-Other: y\r\nsubject: again\r\n\r\nbody\r\n"
    assert section(raw, (1,)) == b"body\r\n"
    assert section(raw, (1,), "MIME") == raw[: raw.index(b"body")]
    assert section(raw, (), "HEADER.FIELDS", ("SUBJECT",)) == b"Subject: a\r\n b\r\nsubject: again\r\n\r\n"
    assert section(raw, (2,)) is None
    assert section(raw, (1,), "TEXT") is None


def test_sections_reuse_a_parsed_structure() -> None:
    root = parse_structure(SECTIONED)
    assert section(SECTIONED, (1, 1), structure=root) == b"plain text"
    assert binary(SECTIONED, (2, 2), structure=root) == b"\x00\x01\x02"


# ---------------------------------------------------------------- BINARY


def test_binary_decodes_the_content_transfer_encoding() -> None:
    assert binary(MIXED, (2,)) == b"%PDF-1.4\n"
    assert binary(MIXED, (1,)) == b"See the report.\r\n"
    assert binary(ALTERNATIVE, (2,)) == b"<p>Hello <b>world</b></p>"
    assert binary(MIXED, ()) == MIXED
    assert binary(MIXED, (3,)) is None
    assert binary(SECTIONED, (1,)) == section(SECTIONED, (1,))  # a multipart has no encoding of its own


def test_binary_of_an_unknown_encoding_is_none() -> None:
    raw = b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n"
    assert binary(raw, (1,)) is None
    assert section(raw, (1,)) == b"begin 644 x\r\n"


def test_quoted_printable_drops_transport_padding_before_soft_breaks():
    from dizimail.codec.mime.transfer import decode_quoted_printable

    assert decode_quoted_printable(b"hello  \r\nfoo\t \t= \r\nb\r\nfoo = \t\r\nbar\r\n") == \
        b"hello\r\nfoo\t \tb\r\nfoo bar\r\n"


def test_quoted_printable_is_linear_in_a_long_run_of_blanks():
    """Blanks that do not end a line stay, and a run of them is looked at once: tried from every blank,
    20,000 took 8 s and these 2,000,000 (a 64 KiB line limit allows a few such lines per message, and
    FETCH BINARY, the search index and the content filter all decode them) would take days."""
    from dizimail.codec.mime.transfer import decode_quoted_printable

    assert decode_quoted_printable(b" " * 2_000_000 + b"x \t\r\n") == b" " * 2_000_000 + b"x\r\n"
    assert decode_quoted_printable(b"a \t \t" * 100_000 + b"b") == b"a \t \t" * 100_000 + b"b"
