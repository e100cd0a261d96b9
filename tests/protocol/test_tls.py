"""TLS offered by every listener: Mozilla's "intermediate" profile, AEAD suites only (issue 9 §3)."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess

import pytest

CBC_SUITES = ("ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA384", "ECDHE-ECDSA-AES128-SHA",
              "ECDHE-ECDSA-AES256-SHA")
AEAD_SUITES = ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305")


def tls12_client(cipher: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(cipher)
    return ctx


def handshake(port: int, ctx: ssl.SSLContext) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=15) as raw, ctx.wrap_socket(raw) as tls:
        cipher = tls.cipher()
        assert cipher is not None
        return cipher[0]


@pytest.mark.parametrize("listener", ["smtps", "pop3s", "imaps"])
def test_tls12_cbc_suites_are_refused_on_every_implicit_tls_listener(server, listener):
    for suite in CBC_SUITES:
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            handshake(server.ports[listener], tls12_client(suite))


@pytest.mark.parametrize("listener", ["smtps", "pop3s", "imaps"])
def test_tls12_aead_suites_are_accepted(server, listener):
    for suite in AEAD_SUITES:
        assert handshake(server.ports[listener], tls12_client(suite)) == suite


def s_client(port: int, starttls: str, cipher: str) -> subprocess.CompletedProcess[str]:
    openssl = shutil.which("openssl")
    assert openssl, "openssl is not installed; run scripts/test-deps.sh"
    return subprocess.run([openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-starttls", starttls,
                           "-tls1_2", "-cipher", cipher], input="", capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(("listener", "protocol"), [("submission", "smtp"), ("imap", "imap"), ("pop3", "pop3")])
def test_starttls_refuses_cbc_and_accepts_aead_with_openssl(server, listener, protocol):
    refused = s_client(server.ports[listener], protocol, "ECDHE-ECDSA-AES128-SHA256")
    assert "Cipher is (NONE)" in refused.stdout or refused.returncode != 0, refused.stdout
    accepted = s_client(server.ports[listener], protocol, "ECDHE-ECDSA-AES256-GCM-SHA384")
    assert "Cipher is ECDHE-ECDSA-AES256-GCM-SHA384" in accepted.stdout, accepted.stdout + accepted.stderr
