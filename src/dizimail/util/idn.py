"""Internationalised domain names (RFC 3490): one spelling for each name.

Mail names a domain two ways: in A-labels (``xn--tfr181f.cn``, what a client or MTA without SMTPUTF8
sends) and in U-labels (``电力.cn``, what people type and read; with an ideographic full stop, ``电力。cn``,
as Chinese input methods write it). Our own domains, routes and DKIM keys are kept in U-labels, the
form operators read: :func:`unicode_domain` turns either spelling into that one, so a look-up finds a
domain however the sender spelt it. :func:`ascii_domain` gives the A-labels that DNS and the
DKIM ``d=`` tag need.

The standard library's IDNA 2003 codec (nameprep, punycode). Punycode costs time quadratic in a label
(18 ms for one of 250 CJK characters, which the codec encodes before it finds it too long), so label and
name lengths are checked before the codec runs: a label is at most 63 characters, a name 253.
"""

from __future__ import annotations

import re

MAX_NAME = 253
MAX_LABEL = 63
_FULLWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}  # ＣＮ → CN, as an input method may type
_DOTS = re.compile("[.\u3002\uff0e\uff61]")  # what the codec takes for a dot (RFC 3490 §3.1)


def unicode_domain(name: str) -> str:
    """``name`` lower-case, without a final dot, in U-labels. ValueError if it is not a domain name the
    codec can spell both ways (an empty or over-long label, an ``xn--`` label that is not punycode)."""
    return _spell(name, "idna")


def ascii_domain(name: str) -> str:
    """``name`` lower-case, without a final dot, in A-labels; ValueError as :func:`unicode_domain`."""
    return _spell(name, "ascii")


def unicode_address(address: str) -> str:
    """``local@domain`` with its domain spelt for a look-up of ours: lower-case, ASCII dots, ``xn--`` labels
    decoded (unchanged if one is no punycode: the look-up then finds nothing, as for any domain not ours).

    Cheaper than :func:`unicode_domain`, as a sender may send a thousand recipients: no nameprep, no
    encoding to check the result (18 ms for one hostile label), only a decode of labels of at most 63
    characters (under 0.1 ms each). A domain in U-labels is taken as the sender wrote it, full-width
    ASCII apart: RFC 6531 wants it in the normal form our own names are kept in."""
    local, at, domain = address.rpartition("@")
    if not at or (domain.isascii() and "xn--" not in domain.lower()):
        return address
    labels = _DOTS.split(domain.translate(_FULLWIDTH).lower().rstrip(".\u3002\uff0e\uff61"))
    try:
        return local + "@" + ".".join(_decoded(label) for label in labels)
    except UnicodeError:
        return address


def _decoded(label: str) -> str:
    if not label.startswith("xn--"):
        return label
    if len(label) > MAX_LABEL or not label.isascii():
        raise UnicodeError("not an A-label")
    decoded = label[4:].encode("ascii").decode("punycode")
    if decoded.isascii():  # an A-label spells something only U-labels can: xn--example- is not example
        raise UnicodeError("not an A-label")
    return decoded


def _spell(name: str, spelling: str) -> str:
    name = name.strip().lower()
    if name.isascii() and (spelling == "ascii" or "xn--" not in name):
        return name.rstrip(".")
    if len(name) > MAX_NAME + 1 or any(len(label) > MAX_LABEL for label in _DOTS.split(name)):
        raise ValueError("not a domain name: too long")  # U-labels are never longer than their A-labels
    try:
        data = name.encode("idna").rstrip(b".")  # the codec splits on . and its full-width and ideographic forms
        if len(data) > MAX_NAME:
            raise ValueError("not a domain name: too long")
        return data.decode(spelling)
    except UnicodeError as exc:
        raise ValueError(f"not a domain name: {exc}") from None
