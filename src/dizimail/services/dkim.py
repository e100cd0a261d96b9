"""DKIM (RFC 6376) keys per domain and signing of submitted mail, with dkimpy.

Signing happens once, at ingest of submitted mail (authenticated senders): the
DKIM-Signature header goes into the queue row's prefix, so the stored blob
stays the bytes we received and every later relay leaves the signed part alone.
"""

from __future__ import annotations

import base64
import logging

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dizimail.interfaces import DkimKeyStore
from dizimail.model.outbound import DkimKey
from dizimail.services.accounts import normalize_domain
from dizimail.util.idn import ascii_domain, unicode_address

log = logging.getLogger("dizimail.dkim")
SIGNED_HEADERS = [b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"reply-to", b"in-reply-to",
                  b"references", b"mime-version", b"content-type", b"content-transfer-encoding",
                  # a list's fields (RFC 8058 §4: the signature must cover the one-click unsubscription)
                  b"list-id", b"list-post", b"list-help", b"list-unsubscribe", b"list-unsubscribe-post"]


def record_name(key: DkimKey) -> str:
    """Where the public key is published: ``selector._domainkey.domain``, in A-labels (DNS)."""
    return f"{key.selector}._domainkey.{ascii_domain(key.domain)}"


def txt_record(key: DkimKey) -> str:
    return f"v=DKIM1; k=rsa; p={key.public_key}"


def sign(key: DkimKey, message: bytes) -> bytes:
    """The DKIM-Signature header line(s) for ``message`` (relaxed/relaxed, rsa-sha256), CRLF-terminated."""
    present = {line.split(b":", 1)[0].strip().lower()
               for line in message.split(b"\r\n\r\n", 1)[0].split(b"\r\n") if b":" in line and line[:1] not in b" \t"}
    headers = [h for h in SIGNED_HEADERS if h in present or h == b"from"]  # From always (RFC 6376 §5.4), even absent
    signature: bytes = dkim.sign(message, key.selector.encode(), ascii_domain(key.domain).encode(), key.private_key,
                                 canonicalize=(b"relaxed", b"relaxed"), include_headers=headers)
    return signature.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class DkimService:
    def __init__(self, keys: DkimKeyStore, selector: str) -> None:
        self.keys = keys
        self.selector = selector

    async def generate(self, domain: str, bits: int = 2048) -> DkimKey:
        """Make and store a new key for ``domain`` (replacing any earlier one); InvalidInput unless ``domain``
        is a domain name (``../../tmp/x`` is not)."""
        domain = normalize_domain(domain)
        private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
        public = private.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
        key = DkimKey(domain, self.selector, pem, base64.b64encode(public).decode())
        await self.keys.set_dkim_key(key)
        return key

    async def key_for(self, address: str) -> DkimKey | None:
        domain = unicode_address(address.lower()).rpartition("@")[2]  # keys are kept under U-labels
        return await self.keys.get_dkim_key(domain) if domain else None
