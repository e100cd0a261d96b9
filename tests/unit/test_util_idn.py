"""util.idn: one spelling (U-labels) for every internationalised domain name, and A-labels for DNS."""

from __future__ import annotations

import dkim
import pytest

from dizimail.model.outbound import DkimKey
from dizimail.services.accounts import normalize_address, normalize_domain
from dizimail.services.dkim import record_name, sign, txt_record
from dizimail.util.idn import ascii_domain, unicode_address, unicode_domain


@pytest.mark.parametrize("spelling", ["电力.cn", "xn--tfr181f.cn", "XN--TFR181F.CN", "电力。cn", "电力．ＣＮ", "电力.cn."])
def test_every_spelling_of_a_name_is_one(spelling):
    assert unicode_domain(spelling) == "电力.cn"
    assert ascii_domain(spelling) == "xn--tfr181f.cn"
    assert normalize_domain(spelling) == "电力.cn"
    assert unicode_address(f"Alice@{spelling}") == "Alice@电力.cn"  # the local part is not the codec's
    assert normalize_address(f"Alice@{spelling}") == "alice@电力.cn"


def test_ascii_names_pass_unchanged():
    assert unicode_domain("Example.TEST.") == "example.test"
    assert ascii_domain("example.test") == "example.test"
    assert unicode_address("bob@example.test") == "bob@example.test"


@pytest.mark.parametrize("bad", ["xn--zzzz-.cn", "xn--.cn", "a..电力.cn", "电力." + "长" * 64 + ".cn"])
def test_names_the_codec_cannot_spell_are_refused(bad):
    with pytest.raises(ValueError):
        unicode_domain(bad)
    assert unicode_address(f"x@{bad}") == f"x@{bad}"  # a look-up with it then finds nothing


def test_hostile_lengths_are_refused_before_the_codec():
    """Punycode is quadratic in a label: a name longer than any domain never reaches it (through the
    codec, the first of these takes minutes)."""
    for name in ("电" * 200_000 + ".cn", "xn--" + "a" * 200_000 + ".cn", ("xn--" + "a" * 59 + ".") * 4000 + "cn"):
        with pytest.raises(ValueError):
            unicode_domain(name)
    with pytest.raises(ValueError):
        ascii_domain("电" * 200_000 + ".cn")


def test_a_dkim_signature_names_the_domain_in_a_labels_and_verifies():
    """Keys are kept under U-labels; d= and the TXT record's name are A-labels, as DNS needs them."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    public = private.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    import base64

    key = DkimKey("电力.cn", "s1", pem, base64.b64encode(public).decode())
    assert record_name(key) == "s1._domainkey.xn--tfr181f.cn"
    message = ("From: 张三 <zhang@电力.cn>\r\nTo: bob@example.org\r\nSubject: 检修\r\n\r\n今天检修。\r\n").encode()
    header = sign(key, message)
    assert b"d=xn--tfr181f.cn;" in header
    published = {b"s1._domainkey.xn--tfr181f.cn.": txt_record(key).encode()}
    assert dkim.verify(header + message, dnsfunc=lambda name, timeout=5: published.get(name))
    no_from = b"Subject: no From field\r\n\r\nx\r\n"  # still signed; h= names the missing From
    assert dkim.verify(sign(key, no_from) + no_from, dnsfunc=lambda name, timeout=5: published.get(name))


def test_look_ups_never_run_the_codec(monkeypatch):
    """A sender chooses the domains of up to a thousand recipients: a look-up only decodes A-labels of at
    most 63 characters; nameprep and encoding (18 ms for one hostile label) are for the operator's input."""
    import random

    from dizimail.util import idn

    monkeypatch.setattr(idn, "_spell", lambda *a: pytest.fail("the codec ran for a look-up"))
    rng = random.Random(7)
    hostile = ".".join("".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(63)) for _ in range(3))
    assert unicode_address(f"a@{hostile}.cn") == f"a@{hostile}.cn"
    assert unicode_address("a@xn--" + "a" * 300 + ".cn") == "a@xn--" + "a" * 300 + ".cn"
    assert unicode_address("a@xn--example-.com") == "a@xn--example-.com"  # not a spelling of example.com
    assert unicode_address("a@XN--TFR181F.CN") == "a@电力.cn"
