"""Self-signed certificate for a fresh install, and the server TLS context."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make_self_signed(cert_file: Path, key_file: Path, hostname: str,
                     addresses: Sequence[ipaddress.IPv4Address | ipaddress.IPv6Address] = ()) -> None:
    """A self-signed certificate naming ``hostname`` (CN and DNS SAN: clients such as mbsync check only
    names), ``localhost``, 127.0.0.1 and ``addresses`` (IP SANs). The key file is created 0600 at
    open time (never written first and restricted afterwards) and never replaces an existing file."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dizimail self-signed")])
    now = datetime.datetime.now(datetime.UTC)
    ips = dict.fromkeys([ipaddress.ip_address("127.0.0.1"), *addresses])
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in dict.fromkeys([hostname, "localhost"])]
    alt += [x509.IPAddress(ip) for ip in ips]
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_new(key_file, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()), 0o600)
    write_new(cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o600)


def write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` (less the umask) from the first byte; refuse an existing file or a
    symbolic link in its place."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


# Mozilla's "intermediate" profile, ECDHE only: AEAD suites for TLS 1.2 (no CBC: LUCKY13 and friends).
# TLS 1.3 suites are not set here; OpenSSL's defaults are all AEAD.
TLS12_CIPHERS = ":".join((
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"))


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """The one TLS context of every listener (implicit TLS and STARTTLS): TLS 1.2+, AEAD suites only."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx
