"""RFC 4616 PLAIN and LOGIN steps and the server-side exchange (RFC 4422 §3), tested with literals."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dizimail.codec.sasl import (
    MECHANISMS,
    Challenge,
    Credentials,
    Failed,
    SaslError,
    SaslServer,
    b64_decode_text,
    b64_encode_text,
    decode_plain,
)


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


# --- the exchange ----------------------------------------------------------------------------------
ALICE = b64(b"\x00alice\x00secret")
USERNAME, PASSWORD = b64(b"Username:"), b64(b"Password:")


def test_mechanisms_are_plain_and_login() -> None:
    assert MECHANISMS == ("PLAIN", "LOGIN")
    with pytest.raises(ValueError):
        SaslServer("CRAM-MD5")


def test_plain_with_initial_response_completes_at_once() -> None:
    assert SaslServer("plain").start(ALICE) == Credentials("", "alice", "secret")
    assert SaslServer("PLAIN").start(b64(b"admin\x00alice\x00secret")) == Credentials("admin", "alice", "secret")


def test_plain_without_initial_response_sends_an_empty_challenge() -> None:
    exchange = SaslServer("PLAIN")
    assert exchange.start(None) == Challenge("")
    assert exchange.respond(ALICE.encode() + b" ") == Credentials("", "alice", "secret")


def test_plain_empty_initial_response_is_malformed() -> None:
    step = SaslServer("PLAIN").start("=")  # RFC 4954 §4: "=" is an empty response; PLAIN cannot be empty
    assert isinstance(step, Failed) and step.reason == "malformed"


def test_login_asks_for_user_then_password() -> None:
    exchange = SaslServer("LOGIN")
    assert exchange.start(None) == Challenge(USERNAME)
    assert exchange.respond(b64(b"alice").encode()) == Challenge(PASSWORD)
    assert exchange.respond(b64("密码".encode())) == Credentials("", "alice", "密码")


@pytest.mark.parametrize("initial", [None, "="])
def test_login_without_a_user_in_the_initial_response_asks_for_it(initial: str | None) -> None:
    assert SaslServer("LOGIN").start(initial) == Challenge(USERNAME)


def test_login_initial_response_is_the_user_name() -> None:
    exchange = SaslServer("LOGIN")
    assert exchange.start(b64(b"alice")) == Challenge(PASSWORD)
    assert exchange.respond(b64(b"secret")) == Credentials("", "alice", "secret")


@pytest.mark.parametrize(("mechanism", "steps"), [("PLAIN", 0), ("LOGIN", 0), ("LOGIN", 1)])
def test_star_cancels_at_any_step(mechanism: str, steps: int) -> None:
    exchange = SaslServer(mechanism)
    exchange.start(None)
    for _ in range(steps):
        exchange.respond(b64(b"alice"))
    step = exchange.respond(b"*")
    assert isinstance(step, Failed) and step.reason == "cancelled"


def test_star_as_initial_response_cancels() -> None:
    step = SaslServer("PLAIN").start("*")
    assert isinstance(step, Failed) and step.reason == "cancelled"


@pytest.mark.parametrize("line", [b"!!!", b"\xff\xfe", b"dGVzdA=", b64(b"no separators").encode(), b"A" * 4101])
def test_bad_responses_end_the_exchange(line: bytes) -> None:
    exchange = SaslServer("PLAIN")
    exchange.start(None)
    step = exchange.respond(line)
    assert isinstance(step, Failed)
    assert step.reason == ("too-long" if len(line) > 4096 else "malformed")
    with pytest.raises(RuntimeError):
        exchange.respond(ALICE)


def test_a_line_over_the_sessions_limit_ends_the_exchange() -> None:
    exchange = SaslServer("LOGIN")
    exchange.start(None)
    assert exchange.too_long() == Failed("too-long", "SASL response line too long")
    with pytest.raises(RuntimeError):
        exchange.respond(b64(b"alice"))
