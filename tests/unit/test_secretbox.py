"""Sealed passwords (services.secretbox): Fernet under the master key, plaintext from before still read."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from dizimail.services.secretbox import SecretBox, SecretError


def test_a_sealed_value_opens_with_its_key_and_hides_the_plaintext():
    box = SecretBox(Fernet.generate_key())
    sealed = box.seal("pässwörd 密码")
    assert sealed.startswith("fernet:") and "pässwörd" not in sealed and sealed != box.seal("pässwörd 密码")
    assert box.open(sealed) == "pässwörd 密码"


def test_a_plaintext_value_from_before_sealing_reads_as_it_is():
    box = SecretBox(Fernet.generate_key())
    assert not box.sealed("old-plain") and box.open("old-plain") == "old-plain"


def test_a_value_sealed_under_another_key_is_a_clear_error_not_garbage():
    sealed = SecretBox(Fernet.generate_key()).seal("x")
    with pytest.raises(SecretError) as info:
        SecretBox(Fernet.generate_key()).open(sealed)
    assert info.value.temporary and "master key" in info.value.detail
