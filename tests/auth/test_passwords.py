"""Password hashing: argon2id, salted, a minimum length, and a verify that never raises."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from callvault.auth.passwords import MIN_LENGTH, hash_password, needs_rehash, verify_password
from callvault.errors import InvalidInput


@pytest.mark.usefixtures("real_argon2")
def test_hash_password_makes_a_salted_argon2id_hash_with_the_library_defaults() -> None:
    first, second = hash_password("correct horse battery"), hash_password("correct horse battery")
    assert first.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert first != second  # a fresh salt each time
    assert "correct horse" not in first
    assert verify_password(first, "correct horse battery") is True
    assert needs_rehash(first) is False


def test_verify_password_is_false_for_a_wrong_password_or_a_broken_hash() -> None:
    stored = hash_password("correct horse battery")
    assert verify_password(stored, "correct horse battery") is True
    assert verify_password(stored, "correct horse batterY") is False
    assert verify_password(stored, "") is False
    assert verify_password("not a hash", "correct horse battery") is False
    assert verify_password(stored, "x" * 100_000) is False


def test_passwords_shorter_than_twelve_characters_are_refused() -> None:
    assert MIN_LENGTH == 12
    with pytest.raises(InvalidInput):
        hash_password("x" * 11)
    assert verify_password(hash_password("x" * 12), "x" * 12)


@pytest.mark.usefixtures("real_argon2")
def test_needs_rehash_flags_hashes_made_with_weaker_parameters() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("correct horse battery")
    assert needs_rehash(weak) is True
    assert needs_rehash("garbage") is True
