"""Internationalised domain names (RFC 3490): one spelling for each name.

Mail names a domain two ways: in A-labels (``xn--tfr181f.cn``, what a client or MTA without SMTPUTF8
sends) and in U-labels (``电力.cn``, what people type and read; with an ideographic full stop, ``电力。cn``,
as Chinese input methods write it). Our own domains, routes and DKIM keys are kept in U-labels, the
form operators read: :func:`unicode_domain` turns either spelling into that one, so a look-up finds a
domain however the sender spelt it. :func:`ascii_domain` gives the A-labels that DNS and the
DKIM ``d=`` tag need.

The standard library's IDNA 2003 codec (nameprep, punycode). Punycode costs time quadratic in a label,
but a label is at most 63 octets and a name 253: both are checked before the codec runs.
"""

from __future__ import annotations

MAX_NAME = 253


def unicode_domain(name: str) -> str:
    """``name`` lower-case, without a final dot, in U-labels. ValueError if it is not a domain name the
    codec can spell both ways (an empty or over-long label, an ``xn--`` label that is not punycode)."""
    return _spell(name, "idna")


def ascii_domain(name: str) -> str:
    """``name`` lower-case, without a final dot, in A-labels; ValueError as :func:`unicode_domain`."""
    return _spell(name, "ascii")


def unicode_address(address: str) -> str:
    """``local@domain`` with its domain in U-labels; unchanged if the domain is none (a look-up then
    finds nothing, as for any domain not ours)."""
    local, at, domain = address.rpartition("@")
    if not at or (domain.isascii() and "xn--" not in domain.lower()):
        return address
    try:
        return f"{local}@{unicode_domain(domain)}"
    except ValueError:
        return address


def _spell(name: str, spelling: str) -> str:
    name = name.strip().lower()
    if name.isascii() and (spelling == "ascii" or "xn--" not in name):
        return name.rstrip(".")
    if len(name) > MAX_NAME + 1:  # U-labels are never longer than their A-labels
        raise ValueError("not a domain name: too long")
    try:
        data = name.encode("idna").rstrip(b".")  # the codec splits on . and its full-width and ideographic forms
        if len(data) > MAX_NAME:
            raise ValueError("not a domain name: too long")
        return data.decode(spelling)
    except UnicodeError as exc:
        raise ValueError(f"not a domain name: {exc}") from None
