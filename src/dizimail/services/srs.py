"""The Sender Rewriting Scheme for mail a user's rules send on (issue #12): a forwarded message keeps its
author's envelope sender only in a form the forwarding domain answers for, so that the receiving
server's SPF check (RFC 7208) sees our domain and passes; a bounce to that form comes back here and goes on
to the author. srslib (PyPI, Apache-2.0) writes and reads the addresses (libsrs2's guarded scheme:
``SRS0=hash=time=domain=local@ours``, a 4-character HMAC and a 21-day life); the key is derived from the
node's master key, so every node of a cluster reverses what another wrote."""

from __future__ import annotations

import srslib

MAX_ADDRESS = 254  # RFC 5321 §4.5.3.1.3: longer paths are not read as SRS (nor sent)


class SenderRewriter:
    def __init__(self, key: bytes) -> None:
        self._srs = srslib.SRS(key)

    def forward(self, sender: str, domain: str) -> str:
        """``sender`` as ``domain`` sends it on; the null sender, and what cannot be rewritten, stay."""
        if not sender or "@" not in sender:
            return sender
        try:
            rewritten = str(self._srs.forward(sender, domain))
        except srslib.Error:
            return sender
        return rewritten if len(rewritten) <= MAX_ADDRESS else sender

    def reverse(self, address: str) -> str | None:
        """The author's address behind one of our SRS addresses, or None (not one, forged, expired)."""
        local = address.rpartition("@")[0]
        if len(address) > MAX_ADDRESS or local[:4].upper() not in ("SRS0", "SRS1") or local[4:5] not in ("=", "-", "+"):
            return None
        try:
            return str(self._srs.reverse(address)).lower()
        except (srslib.Error, ValueError):
            return None
