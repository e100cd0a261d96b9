"""Decoded header and body text for SEARCH (RFC 2047, RFC 2231, RFC 6532; GB2312/GB18030 mail)."""

from __future__ import annotations

from dizimail.codec.mime import addresses, body_text, header_text, html_to_text

GB_MESSAGE = (
    b"From: =?gb2312?B?1cXI/Q==?= <zhangsan@example.cn>\r\n"
    b"To: ops@example.cn\r\n"
    b"Subject: =?gb2312?B?teezp9TL0NDI1bGo?=\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=gb2312\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n" + "今日机组运行正常。\r\n".encode("gb2312")
)

GB_MULTIPART = (
    b"Subject: =?GB2312?B?teezp9TL0NDI1bGoo6jI/brFu/rX6aOp?=\r\n"
    b"Content-Type: multipart/alternative; boundary=gb\r\n"
    b"\r\n"
    b"--gb\r\n"
    b"Content-Type: text/plain; charset=GB2312\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"vfHI1bv61+nUy9DQ1f2zo6GjDQo=\r\n"
    b"--gb\r\n"
    b"Content-Type: text/html; charset=gbk\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"PHA+0ru6xbv61+k8Yj7C+ri6usk8L2I+JmFtcDvUy9DQPC9wPg==\r\n"
    b"--gb--\r\n"
)


def test_gb2312_header_and_8bit_body_are_decoded() -> None:
    headers = header_text(GB_MESSAGE)
    assert headers["subject"] == ["电厂运行日报"]
    assert headers["from"] == ["张三 <zhangsan@example.cn>"]
    assert headers["content-type"] == ["text/plain; charset=gb2312"]
    assert body_text(GB_MESSAGE) == "今日机组运行正常。"


def test_gb2312_base64_parts_and_html_are_decoded() -> None:
    assert header_text(GB_MULTIPART)["subject"] == ["电厂运行日报（三号机组）"]
    assert body_text(GB_MULTIPART) == "今日机组运行正常。\n一号机组 满负荷 &运行"


def test_gbk_characters_labelled_gb2312_are_read_as_gb18030() -> None:
    raw = b"Content-Type: text/plain; charset=gb2312\r\n\r\n" + "朱镕基".encode("gbk")
    assert body_text(raw) == "朱镕基"


def test_raw_utf8_headers_smtputf8() -> None:
    raw = "From: 李四 <李四@例子.中国>\r\nSubject: 你好，世界\r\n\r\n正文\r\n".encode()
    headers = header_text(raw)
    assert headers["subject"] == ["你好，世界"]
    assert addresses(headers["from"][0]) == [("李四", "李四@例子.中国")]
    assert body_text(raw) == "正文"


def test_raw_8bit_headers_that_are_not_utf8_fall_back_to_gb18030_then_latin1() -> None:
    raw = b"Subject: " + "电厂".encode("gb2312") + b"\r\nX-Odd: \xff\xfe\r\n\r\n"
    headers = header_text(raw)
    assert headers["subject"] == ["电厂"]
    assert headers["x-odd"] == ["\xff\xfe"]


def test_header_values_are_unfolded_and_repeated_fields_kept_in_order() -> None:
    raw = (
        b"Received: from a\r\n\tby b\r\n"
        b"Received: from c\r\n"
        b"Subject: =?utf-8?Q?caf=C3=A9?=\r\n =?utf-8?Q?_cr=C3=A8me?=\r\n"
        b"\r\n"
    )
    headers = header_text(raw)
    assert headers["received"] == ["from a\tby b", "from c"]
    assert headers["subject"] == ["café crème"]


def test_body_without_charset_tries_utf8_then_gb18030() -> None:
    utf8 = b"Content-Type: text/plain\r\n\r\n" + "中文".encode()
    gb = b"Content-Type: text/plain\r\n\r\n" + "中文".encode("gb18030")
    mislabelled = b"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + "中文".encode()
    assert body_text(utf8) == body_text(gb) == body_text(mislabelled) == "中文"


def test_body_text_skips_attachments_and_includes_forwarded_messages() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=m\r\n\r\n"
        b"--m\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"caf=C3=A9 =\r\nau lait\r\n"
        b"--m\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"
        b"--m\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n"
        b"--m--\r\n"
    )
    assert body_text(raw) == "café au lait\ninner body"
    assert body_text(raw, limit=4) == "café"
    assert body_text(raw, limit=0) == ""


def test_body_text_limit_cuts_large_bodies_without_mojibake() -> None:
    raw = b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + "电".encode() * 100_000
    assert body_text(raw, limit=10) == "电" * 10


def test_html_is_reduced_to_text() -> None:
    markup = (
        "<html><head><style>p {color: red}</style><script>var x = '<p>';</script></head>"
        "<body><!-- hidden --><p>Fish &amp; chips</p><p>caf&eacute;&nbsp;&#20013;</p>"
        "<SCRIPT>unterminated"
    )
    assert html_to_text(markup).strip() == "Fish & chips\ncafé 中"
    assert html_to_text("a < b and <<<<<") == "a < b and <<<<<"


def test_html_charset_from_meta_when_the_header_has_none() -> None:
    raw = (
        b"Content-Type: text/html\r\n\r\n"
        b'<html><head><meta http-equiv="Content-Type" content="text/html; charset=big5"></head>'
        b"<body>" + "中文".encode("big5") + b"</body></html>"
    )
    assert body_text(raw) == "中文"


def test_addresses_helper() -> None:
    assert addresses('"Doe, John" <john@example.com>, =?gb2312?B?1cXI/Q==?= <z@example.cn>') == [
        ("Doe, John", "john@example.com"),
        ("张三", "z@example.cn"),
    ]
    assert addresses("Team: a@x.org, b@y.org;, root") == [("", "a@x.org"), ("", "b@y.org"), ("", "root")]
    assert addresses("bob@example.com (Bob Smith)") == [("Bob Smith", "bob@example.com")]
    assert addresses("") == []
    assert addresses("<>") == []
