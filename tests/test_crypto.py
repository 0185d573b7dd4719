"""Unit tests of the crypto module: shapes, round trips, and that the wrong key never works."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal import crypto
from portal.settings import TEST_ARGON2


def test_receipt_has_at_least_90_bits_and_reads_in_groups() -> None:
    receipt = crypto.new_receipt()
    groups = receipt.split("-")
    assert crypto.RECEIPT_BITS >= 90
    assert len(groups) == 5 and all(len(g) == 4 for g in groups)
    assert len(crypto.normalise_receipt(receipt)) * 5 == crypto.RECEIPT_BITS


def test_receipts_are_unique() -> None:
    assert len({crypto.new_receipt() for _ in range(2000)}) == 2000


@pytest.mark.parametrize(
    "typed",
    [
        "abcd-efgh-jkmn-pqrs-tvwx",
        " ABCD EFGH JKMN PQRS TVWX ",
        "ABCDEFGHJKMNPQRSTVWX",
        "ABCD-EFGH-JKMN-PQRS-TVWX\n",
    ],
)
def test_receipt_normalisation_forgives_case_spaces_and_dashes(typed: str) -> None:
    assert crypto.normalise_receipt(typed) == "ABCDEFGHJKMNPQRSTVWX"


def test_confusable_letters_are_read_as_digits() -> None:
    assert crypto.normalise_receipt("O0I1-L000-0000-0000-0000") == "00111000000000000000"


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "abc",
        "ABCD-EFGH-JKMN-PQRS-TVW",
        "ABCD-EFGH-JKMN-PQRS-TVWXY",
        "ABCD-EFGH-JKMN-PQRS-TVW!",
        "ÄBCD-EFGH-JKMN-PQRS-TVWX",
    ],
)
def test_malformed_receipts_are_refused(typed: str) -> None:
    with pytest.raises(crypto.MalformedSecret):
        crypto.normalise_receipt(typed)


def test_lookup_id_depends_on_pepper() -> None:
    receipt = crypto.normalise_receipt(crypto.new_receipt())
    a = crypto.receipt_lookup_id(b"a" * 32, receipt)
    assert a == crypto.receipt_lookup_id(b"a" * 32, receipt)
    assert a != crypto.receipt_lookup_id(b"b" * 32, receipt)
    assert len(a) == 32


def test_reporter_key_derivation_is_deterministic_per_salt() -> None:
    receipt = crypto.normalise_receipt(crypto.new_receipt())
    salt = crypto.new_salt()
    key = crypto.derive_reporter_private_key(receipt, salt, TEST_ARGON2)
    assert key == crypto.derive_reporter_private_key(receipt, salt, TEST_ARGON2)
    assert key != crypto.derive_reporter_private_key(receipt, crypto.new_salt(), TEST_ARGON2)


@given(st.binary(max_size=2048), st.binary(max_size=64))
def test_encrypt_round_trip(plaintext: bytes, associated: bytes) -> None:
    key = crypto.new_key()
    blob = crypto.encrypt(key, plaintext, associated)
    if len(plaintext) >= 16:  # short strings can appear in random bytes by chance
        assert plaintext not in blob
    assert crypto.decrypt(key, blob, associated) == plaintext


def test_decrypt_refuses_other_key_other_associated_data_and_tampering() -> None:
    key = crypto.new_key()
    blob = crypto.encrypt(key, b"secret", crypto.case_item_ad("case-a", "report"))
    with pytest.raises(crypto.DecryptionFailed):
        crypto.decrypt(crypto.new_key(), blob, crypto.case_item_ad("case-a", "report"))
    with pytest.raises(crypto.DecryptionFailed):  # moved to another case
        crypto.decrypt(key, blob, crypto.case_item_ad("case-b", "report"))
    with pytest.raises(crypto.DecryptionFailed):  # moved to another field
        crypto.decrypt(key, blob, crypto.case_item_ad("case-a", "contact"))
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(crypto.DecryptionFailed):
        crypto.decrypt(key, tampered, crypto.case_item_ad("case-a", "report"))


def test_sealed_box_opens_only_with_matching_private_key() -> None:
    private, public = crypto.new_keypair()
    other, _ = crypto.new_keypair()
    sealed = crypto.seal(public, b"case key")
    assert crypto.unseal(private, sealed) == b"case key"
    with pytest.raises(crypto.DecryptionFailed):
        crypto.unseal(other, sealed)


def test_staff_private_key_unwraps_by_password_and_by_recovery_key_only() -> None:
    keys = crypto.new_staff_keys("a long enough password", TEST_ARGON2)
    by_password = crypto.unwrap_with_password(
        "a long enough password", keys.password_salt, keys.key_by_password, TEST_ARGON2
    )
    by_recovery = crypto.unwrap_with_recovery(keys.recovery_key.lower(), keys.key_by_recovery)
    assert by_password == by_recovery
    assert crypto.public_key_of(by_password) == keys.public_key
    with pytest.raises(crypto.DecryptionFailed):
        crypto.unwrap_with_password(
            "wrong password", keys.password_salt, keys.key_by_password, TEST_ARGON2
        )
    with pytest.raises(crypto.DecryptionFailed):
        crypto.unwrap_with_recovery(crypto.new_recovery_key(), keys.key_by_recovery)
    assert len(crypto.normalise_recovery_key(keys.recovery_key)) * 5 == 160


def test_password_hash_verifies_only_the_password() -> None:
    hashed = crypto.hash_password("hunter2hunter2", TEST_ARGON2)
    assert hashed.startswith("$argon2id$")
    assert crypto.verify_password(hashed, "hunter2hunter2", TEST_ARGON2)
    assert not crypto.verify_password(hashed, "hunter2hunter3", TEST_ARGON2)
    assert not crypto.verify_password("not a hash", "hunter2hunter2", TEST_ARGON2)


def test_random_identifiers_have_the_documented_shape() -> None:
    assert len(crypto.random_id()) == 32
    handle = crypto.new_handle()
    assert len(handle) == 9 and handle[4] == "-"
    assert 0 <= crypto.random_sort_key() < 2**62


def test_keyed_digest_and_subkeys_are_independent() -> None:
    secret = crypto.random_bytes()
    assert crypto.subkey(secret, "a") != crypto.subkey(secret, "b")
    assert crypto.keyed_digest(b"k" * 32, "127.0.0.1") != crypto.keyed_digest(
        b"j" * 32, "127.0.0.1"
    )
    assert "127.0.0.1" not in crypto.keyed_digest(b"k" * 32, "127.0.0.1")
