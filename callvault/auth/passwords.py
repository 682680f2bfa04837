"""Password hashing with argon2id (argon2-cffi's ``PasswordHasher``, its RFC 9106 low-memory defaults)."""

from __future__ import annotations

import functools
import secrets
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from callvault.errors import InvalidInput

MIN_LENGTH: Final = 12
# Long enough for any passphrase; short enough that nobody makes the server hash megabytes per attempt.
MAX_LENGTH: Final = 1024

_hasher: Final = PasswordHasher()


def check_policy(password: str) -> None:
    """Raise :class:`InvalidInput` unless ``password`` is MIN_LENGTH..MAX_LENGTH characters."""
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"a password may have at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    """An argon2id hash (PHC string, salt included) of a password that meets :func:`check_policy`."""
    check_policy(password)
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``; False on a mismatch or an unusable hash. Never raises
    for a wrong password. Over-long input is refused without hashing it."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):  # VerifyMismatchError is a VerificationError
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other parameters than today's (rehash after a successful login)."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@functools.cache
def dummy_hash() -> str:
    """A hash of a random password, verified against for unknown users so they take as long as known ones.
    Built on first use, not at import."""
    return _hasher.hash(secrets.token_urlsafe(16))
