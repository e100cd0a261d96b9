"""RFC 4616 PLAIN and LOGIN steps, tested with literals."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dizimail.codec.sasl import SaslError, b64_decode_text, b64_encode_text, decode_plain


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"\x00alice\x00secret", ("", "alice", "secret")),
        (b"admin\x00alice\x00secret", ("admin", "alice", "secret")),
        (b"\x00alice@example.com\x00pass phrase", ("", "alice@example.com", "pass phrase")),
        ("\x00用户\x00密码".encode(), ("", "用户", "密码")),
        (b"\x00" + b"u" * 255 + b"\x00" + b"p" * 255, ("", "u" * 255, "p" * 255)),
    ],
)
def test_decode_plain(raw: bytes, expected: tuple[str, str, str]) -> None:
    assert decode_plain(b64(raw)) == expected


def test_decode_plain_rfc4616_example() -> None:
    assert decode_plain("AHRpbQB0YW5zdGFhZnRhbnN0YWFm") == ("", "tim", "tanstaaftanstaaf")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"alice\x00secret",
        b"\x00alice\x00secret\x00",
        b"\x00\x00secret",
        b"\x00alice\x00",
        b"\x00alice\x00\xff\xfe",
        b"\x00\xc3\x28\x00secret",
        b"\x00" + b"u" * 256 + b"\x00secret",
        b"\x00alice\x00" + b"p" * 256,
    ],
)
def test_decode_plain_rejects_bad_messages(raw: bytes) -> None:
    with pytest.raises(SaslError):
        decode_plain(b64(raw))


@pytest.mark.parametrize(
    "text",
    [
        "AGFsaWNlAHNlY3JldA",  # missing padding
        "AGFsaWNlAHNlY3JldA===",
        "AGFs aWNlAHNlY3JldA==",
        "AGFsaWNlAHNlY3JldA==\n",
        "AGFsaWNlAHNlY3JldA==AA==",
        "AGFsaWNlAHNlY3JldB==",  # non-zero padding bits
        "*",
        "=",
        "AGFsaWNlAHNlY3JldA==é",
        "A" * 4100,
    ],
)
def test_base64_is_strictly_validated(text: str) -> None:
    with pytest.raises(SaslError):
        decode_plain(text)
    with pytest.raises(SaslError):
        b64_decode_text(text)


def test_input_limit_is_4096_characters() -> None:
    ok = b64(b"x" * 3072)
    assert len(ok) == 4096
    assert b64_decode_text(ok) == "x" * 3072
    with pytest.raises(SaslError):
        b64_decode_text(ok + "AAAA")


def test_login_steps() -> None:
    assert b64_encode_text("Username:") == "VXNlcm5hbWU6"
    assert b64_encode_text("Password:") == "UGFzc3dvcmQ6"
    assert b64_decode_text("YWxpY2U=") == "alice"
    assert b64_decode_text("") == ""
    assert b64_decode_text(b64("密码 x".encode())) == "密码 x"


@pytest.mark.parametrize("raw", [b"\xff", b"a\x00b"])
def test_login_step_rejects_bad_text(raw: bytes) -> None:
    with pytest.raises(SaslError):
        b64_decode_text(b64(raw))


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00")))
def test_encode_decode_round_trip(text: str) -> None:
    encoded = b64_encode_text(text)
    if len(encoded) <= 4096:
        assert b64_decode_text(encoded) == text
