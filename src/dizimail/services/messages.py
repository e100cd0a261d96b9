"""IMAP renderings of a stored message (computed once per blob; DESIGN.md §3)."""

from __future__ import annotations

from dizimail.codec.mime.imap import bodystructure, envelope
from dizimail.model.types import BlobMeta


def describe_blob(raw: bytes) -> BlobMeta:
    """ENVELOPE, BODYSTRUCTURE and BODY of a message blob (the per-recipient prefix holds only
    trace fields, which none of the three include)."""
    return BlobMeta(envelope(raw), bodystructure(raw, extensible=True), bodystructure(raw, extensible=False))
