"""Password hashing, API-key hashing and encryption of company secrets at rest."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token(nbytes: int = 24) -> str:
    """A URL-safe random token."""
    return secrets.token_urlsafe(nbytes)


def hash_token(secret_key: str, token: str) -> str:
    """Keyed hash of a high-entropy token (API keys, visitor tokens).

    Tokens carry 190+ bits of entropy, so a keyed SHA-256 is as safe as a slow hash and
    lets a request be authenticated with one indexed lookup.
    """
    # hmac.digest: the same value as hmac.new(...).hexdigest(), in one call (once a request)
    return hmac.digest(secret_key.encode(), token.encode(), "sha256").hex()


def tokens_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)


def _fernet(secret_key: str) -> Fernet:
    key = base64.urlsafe_b64encode(hashlib.sha256(b"atende-secrets:" + secret_key.encode()).digest())
    return Fernet(key)


def encrypt_secret(secret_key: str, value: str) -> str:
    return _fernet(secret_key).encrypt(value.encode()).decode()


def decrypt_secret(secret_key: str, token: str) -> str:
    try:
        return _fernet(secret_key).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("secret cannot be decrypted with the configured ATENDE_SECRET_KEY") from exc
