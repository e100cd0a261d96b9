"""RFC 2045 / 2046 MIME structure with byte offsets, tested with byte literals."""

from __future__ import annotations

import base64

from dizimail.codec.mime import Part, parse_structure, resolve
from dizimail.codec.mime.charsets import decode_words, lookup
from dizimail.codec.mime.headers import split_header
from dizimail.codec.mime.params import decode_params, parse_content_type, parse_params
from dizimail.codec.mime.transfer import decode_base64, decode_transfer

SIMPLE = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: bob@example.com\r\n"
    b"Subject: lunch\r\n"
    b"\r\n"
    b"Shall we?\r\n"
    b"-- \r\n"
    b"Alice\r\n"
)

ALTERNATIVE = (
    b"From: alice@example.com\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="=_b1"\r\n'
    b"\r\n"
    b"This is a MIME message.\r\n"
    b"--=_b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hello\r\n"
    b"world\r\n"
    b"\r\n"
    b"--=_b1  \t\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"<p>Hello=20<b>world</b></p>\r\n"
    b"--=_b1--\r\n"
    b"epilogue\r\n"
)


def body(raw: bytes, part: Part) -> bytes:
    return raw[part.body_start : part.body_end]


def test_simple_message_is_one_text_plain_part_with_default_charset() -> None:
    root = parse_structure(SIMPLE)
    fields_end = SIMPLE.index(b"\r\n\r\n") + 2
    assert (root.header_start, root.header_end, root.body_start, root.body_end) == (
        0,
        fields_end,
        fields_end + 2,
        len(SIMPLE),
    )
    assert SIMPLE[root.header_end : root.body_start] == b"\r\n"
    assert root.content_type == "text/plain"
    assert root.params == {"charset": "us-ascii"}
    assert root.encoding == "7bit"
    assert root.children == []
    assert body(SIMPLE, root) == b"Shall we?\r\n-- \r\nAlice\r\n"


def test_multipart_alternative_offsets_exclude_the_crlf_before_each_delimiter() -> None:
    root = parse_structure(ALTERNATIVE)
    assert root.content_type == "multipart/alternative"
    assert root.params == {"boundary": "=_b1"}
    plain, html = root.children
    assert body(ALTERNATIVE, plain) == b"Hello\r\nworld\r\n"
    assert ALTERNATIVE[plain.header_start : plain.body_start] == b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    assert plain.params == {"charset": "utf-8"}
    assert html.content_type == "text/html"
    assert html.encoding == "quoted-printable"  # the delimiter line had trailing white space
    assert body(ALTERNATIVE, html) == b"<p>Hello=20<b>world</b></p>"
    assert [p.content_type for p in root.walk()] == ["multipart/alternative", "text/plain", "text/html"]


def test_missing_close_delimiter_lets_the_last_part_run_to_the_end() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=xyz\r\n\r\n"
        b"--xyz\r\nContent-Type: text/plain\r\n\r\none\r\n"
        b"--xyz\r\n\r\ntwo\r\nand more\r\n"
    )
    first, second = parse_structure(raw).children
    assert body(raw, first) == b"one"
    assert first.params == {}  # explicit text/plain without charset stays without
    assert second.header_start == second.header_end  # the part starts with its blank line: no fields
    assert second.params == {"charset": "us-ascii"}
    assert body(raw, second) == b"two\r\nand more\r\n"


def test_boundary_that_is_a_prefix_of_a_line_is_not_a_delimiter() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=ab\r\n\r\n"
        b"--ab\r\n\r\nx\r\n--abc\r\ny\r\n--ab--garbage\r\nz\r\n--ab--\r\n"
    )
    (only,) = parse_structure(raw).children
    assert body(raw, only) == b"x\r\n--abc\r\ny\r\n--ab--garbage\r\nz"


def test_delimiter_at_the_start_of_the_body_and_bare_lf_line_ends() -> None:
    raw = b"Content-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: text/html\n\n<b>x</b>\n--q--\n"
    (part,) = parse_structure(raw).children
    assert part.content_type == "text/html"
    assert body(raw, part) == b"<b>x</b>"


NESTED = (
    b"From: a@example.com\r\n"
    b"Subject: fwd\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n'
    b"\r\n"
    b"--outer\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"see attached\r\n"
    b"--outer\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"Content-Description: forwarded\r\n"
    b"\r\n"
    b"From: c@example.com\r\n"
    b"Subject: inner\r\n"
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
    b"--outer--\r\n"
)


def test_message_rfc822_holds_the_encapsulated_message_and_its_parts() -> None:
    root = parse_structure(NESTED)
    text, forwarded = root.children
    assert forwarded.content_type == "message/rfc822"
    assert forwarded.description == "forwarded"
    (inner,) = forwarded.children
    assert inner is forwarded.message
    assert inner.header_start == forwarded.body_start
    assert inner.body_end == forwarded.body_end
    assert inner.content_type == "multipart/mixed"
    first, second = inner.children
    assert body(NESTED, first) == b"inner text"
    # The inner close delimiter is missing: the outer one ends the inner part.
    assert body(NESTED, second) == b"AAEC"
    assert decode_transfer(body(NESTED, second), second.encoding) == b"\x00\x01\x02"
    assert resolve(root, (2, 2)) is second
    assert resolve(root, (2,)) is forwarded


def test_multipart_digest_parts_default_to_message_rfc822() -> None:
    raw = (
        b"Content-Type: multipart/digest; boundary=d\r\n\r\n"
        b"--d\r\n\r\nSubject: one\r\n\r\nfirst\r\n"
        b"--d\r\nContent-Type: text/plain\r\n\r\nnot a message\r\n--d--\r\n"
    )
    digest = parse_structure(raw)
    first, second = digest.children
    assert first.content_type == "message/rfc822"
    assert first.params == {}
    assert first.message is not None and body(raw, first.message) == b"first"
    assert second.content_type == "text/plain"


def test_part_numbers_follow_rfc3501_section_6_4_5() -> None:
    root = parse_structure(NESTED)
    assert resolve(root, ()) is root
    assert resolve(root, (1,)) is root.children[0]
    assert resolve(root, (3,)) is None
    assert resolve(root, (0,)) is None
    assert resolve(root, (1, 1)) is None  # a text part has no parts
    simple = parse_structure(SIMPLE)
    assert resolve(simple, (1,)) is simple  # a non-multipart message's body is its part 1
    assert resolve(simple, (2,)) is None
    assert resolve(simple, (1, 1)) is None


def test_rfc2231_filename_with_charset_is_decoded() -> None:
    raw = (
        b"Content-Type: application/pdf; name*0*=UTF-8''%E6%8A%A5; name*1*=%E5%91%8A; name*2=.pdf\r\n"
        b"Content-Disposition: attachment;\r\n filename*=UTF-8''%E6%8A%A5%E5%91%8A.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"Content-Language: zh-CN, en (English)\r\n"
        b"Content-ID: <pdf@example.com>\r\n"
        b"Content-Location: http://example.com/r.pdf\r\n"
        b"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n"
        b"\r\n"
        b"JVBERi0=\r\n"
    )
    part = parse_structure(raw)
    assert part.content_type == "application/pdf"
    assert part.params == {"name": "报告.pdf"}
    assert part.disposition == "attachment"
    assert part.disposition_params == {"filename": "报告.pdf"}
    assert part.language == ("zh-CN", "en")
    assert (part.content_id, part.location, part.md5) == (
        "<pdf@example.com>",
        "http://example.com/r.pdf",
        "Q2hlY2sgSW50ZWdyaXR5IQ==",
    )


def test_content_type_values_with_comments_quotes_and_8bit() -> None:
    assert parse_content_type("text/plain; charset=us-ascii (Plain text)") == ("text", "plain", [("charset", "us-ascii")])
    assert parse_content_type('TEXT/HTML ; Charset="UTF-8"') == ("text", "html", [("charset", "UTF-8")])
    assert parse_content_type("text/plain charset=utf-8") == ("text", "plain", [("charset", "utf-8")])
    assert parse_content_type("garbage") is None
    assert parse_content_type("") is None
    assert parse_params('; name="a \\"b\\" c"; bare; x=1; =2') == [("name", 'a "b" c'), ("x", "1")]
    assert parse_params('name="unterminated') == [("name", "unterminated")]
    raw = "name=\"报告.pdf\"".encode().decode("latin-1")  # raw UTF-8 in a quoted string
    assert decode_params(parse_params(raw)) == {"name": "报告.pdf"}
    gbk = "name=\"报告.pdf\"".encode("gbk").decode("latin-1")
    assert decode_params(parse_params(gbk)) == {"name": "报告.pdf"}
    # The RFC 2231 value wins over a plain one; unknown charsets fall back.
    assert decode_params([("title", "x"), ("title*", "x-unknown'en'%C3%A9")]) == {"title": "é"}


def test_invalid_content_type_means_text_plain_us_ascii() -> None:
    part = parse_structure(b"Content-Type: /\r\nContent-Transfer-Encoding: BASE64 (yes)\r\n\r\nx")
    assert (part.content_type, part.params, part.encoding) == ("text/plain", {"charset": "us-ascii"}, "base64")


def test_header_section_ends_at_a_line_that_is_not_a_field() -> None:
    raw = b"Subject: x\r\n folded\r\nthis is body text\r\nmore\r\n"
    block = split_header(raw)
    assert [f.name for f in block.fields] == ["subject"]
    assert block.end == block.body_start == raw.index(b"this")
    spaced = split_header(b"Subject : obsolete\r\n\r\n")
    assert [f.name for f in spaced.fields] == ["subject"]


def test_header_fields_keep_their_offsets_and_continuation_lines() -> None:
    raw = b"A: 1\r\n  more\r\n \r\nB:2\nC :\r\n\r\nbody"
    block = split_header(raw)
    assert [(f.name, f.start, f.value_start, f.end) for f in block.fields] == [
        ("a", 0, 2, 17), ("b", 17, 19, 21), ("c", 21, 24, 26)]
    assert (block.end, block.body_start) == (26, 28)
    cut = split_header(raw, 0, 10)  # up to ``end`` only, the last field unterminated
    assert [(f.name, f.end) for f in cut.fields] == [("a", 10)] and cut.end == cut.body_start == 10
    assert split_header(b"\rA: 1\r\n").fields == []  # a lone CR is no field and no blank line
    assert [f.name for f in split_header(b"X: " + b"a" * 100_000).fields] == ["x"]


def test_encoded_words_and_charset_labels() -> None:
    assert decode_words("=?gb2312?B?teezp9TL0NDI1bGo?=") == "电厂运行日报"
    # A multi-byte character split across two words comes out whole.
    encoded = "电厂运行日报".encode("gb2312")
    head, tail = (base64.b64encode(chunk).decode() for chunk in (encoded[:1], encoded[1:]))
    assert decode_words(f"=?GB2312?B?{head}?=\r\n =?GB2312?B?{tail}?=") == "电厂运行日报"
    assert decode_words("=?utf-8?Q?caf=C3=A9_au_lait?= ok") == "café au lait ok"
    assert decode_words("a =?utf-8*en?q?x?= b") == "a x b"
    assert decode_words("=?bogus?B?5L2g5aW9?=") == "你好"
    assert lookup("GB2312") == "gb18030"
    assert lookup("hex") is None and lookup("punycode") is None and lookup("x-nothing") is None


def test_made_up_charset_labels_leave_no_trace() -> None:
    """A label the codec search cannot know is refused before codecs.lookup, which would cache each
    failed name for good: a message of thousands of made-up labels must not grow that cache."""
    import encodings

    before = len(encodings._cache)
    assert all(decode_words(f"=?x-made-up-{i}?Q?hi?=") == "hi" for i in range(5000))
    assert len(encodings._cache) == before
    assert lookup("Windows-1252") == "cp1252" and lookup("ISO_8859-1:1987") == "iso8859-1"
    assert lookup("euc-kr") == "cp949" and lookup("KS_C_5601-1987") == "cp949" and lookup("utf8") == "utf-8"


def test_base64_is_decoded_leniently() -> None:
    assert decode_base64(b"aGVs\r\nbG8=") == b"hello"
    assert decode_base64(b"aGVsbG8=aGVsbG8=") == b"hellohello"  # each line padded on its own
    assert decode_base64(b"aGVsbG8*!") == b"hello"
    assert decode_base64(b"aGVsbG8gdw") == b"hello w"
    assert decode_base64(b"aGVsbG8gd") == b"hello "  # a lone sixth of a byte is noise
    assert decode_transfer(b"caf=C3=A9=\r\n!", "quoted-printable") == "café!".encode()
    assert decode_transfer(b"x", "x-uuencode") is None
