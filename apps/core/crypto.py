"""Secrets at rest: sealed with AES-256-GCM under a key derived from CARBONPARK_MASTER_KEY
(R-7.4.4.1, R-8.2.2.3: keys protected at rest, never in plain text). The context (e.g. a key id) is
bound as associated data, so a sealed value cannot be moved to another row."""

from __future__ import annotations

import os
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


@lru_cache(maxsize=4)
def _master(master_key: str) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"carbonpark/master/v1",
                   info=b"seal secrets at rest").derive(master_key.encode())
    return AESGCM(derived)


def _master_key() -> str:
    from django.conf import settings

    return settings.CARBONPARK_MASTER_KEY


def seal_secret(secret: bytes, context: str) -> bytes:
    nonce = os.urandom(12)
    return b"\x01" + nonce + _master(_master_key()).encrypt(nonce, secret, context.encode())


def open_secret(sealed: bytes, context: str) -> bytes:
    sealed = bytes(sealed)
    if sealed[:1] != b"\x01":
        raise ValueError("unknown sealing version")
    return _master(_master_key()).decrypt(sealed[1:13], sealed[13:], context.encode())
