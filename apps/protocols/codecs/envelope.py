"""The CPE1 application-layer encryption envelope of interfaces.md §5 (R-5.2.2.6, R-8.2.2.2), AES-256-GCM.

Layout: ``b"CPE1"`` · content type (1 byte) · key-id length (1 byte) · key id (ASCII, 1–255 characters)
· nonce (12 bytes) · ciphertext with the 16-byte GCM tag appended. The associated data is every byte
before the nonce followed by the UTF-8 sourceId (for files: the upload id), so an envelope cannot be
replayed under another source's id, and its header (content type, key id) cannot be altered.

Pure apart from drawing a fresh nonce in ``seal``. Choosing the key for a key id, and refusing
plaintext from sources that must encrypt (E5102, E5104), is the caller's part.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"CPE1"
CONTENT_JSON = 0x01
CONTENT_TLV = 0x02
CONTENT_FILE = 0x03
CONTENT_TYPES = frozenset({CONTENT_JSON, CONTENT_TLV, CONTENT_FILE})
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
MAX_KEY_ID = 255


class EnvelopeError(Exception):
    """An envelope refused: ``code`` is E5101 (malformed), E5103 (authentication failed) or E5105
    (unknown content type); ``detail`` is English text for logs."""

    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Envelope:
    """A parsed, still encrypted envelope; ``header`` is every byte before the nonce (the start of the
    associated data)."""

    content_type: int
    key_id: str
    nonce: bytes
    ciphertext: bytes
    header: bytes


def is_envelope(data: bytes) -> bool:
    """Whether a payload claims to be an envelope (starts with the ``CPE1`` magic), interfaces.md §5."""
    return bytes(data[:4]) == MAGIC


def _header(content_type: int, key_id: bytes) -> bytes:
    return MAGIC + bytes([content_type, len(key_id)]) + key_id


def _aad(header: bytes, source_id: str) -> bytes:
    return header + source_id.encode("utf-8")


def parse(data: bytes) -> Envelope:
    """Split an envelope into its parts (interfaces.md §5) without decrypting it.

    Raises EnvelopeError E5101 when it is malformed (too short, wrong magic, key id empty, non-ASCII or
    running past the end, ciphertext shorter than the GCM tag), E5105 for an unknown content type.
    """
    data = bytes(data)
    if len(data) < 6:
        raise EnvelopeError("E5101", f"{len(data)} bytes are too few for an envelope header")
    if data[:4] != MAGIC:
        raise EnvelopeError("E5101", f"the payload starts with {data[:4].hex()}, not the CPE1 magic")
    content_type, key_len = data[4], data[5]
    if content_type not in CONTENT_TYPES:
        raise EnvelopeError("E5105", f"content type 0x{content_type:02X} is not 0x01 JSON, 0x02 TLV or 0x03 file")
    if key_len == 0:
        raise EnvelopeError("E5101", "the key id is empty (1-255 ASCII characters expected)")
    nonce_at = 6 + key_len
    if nonce_at > len(data):
        raise EnvelopeError("E5101", f"the key id declares {key_len} bytes, past the end of the envelope "
                                     f"({len(data)} bytes)")
    try:
        key_id = data[6:nonce_at].decode("ascii")
    except UnicodeDecodeError:
        raise EnvelopeError("E5101", "the key id is not ASCII") from None
    cipher_at = nonce_at + NONCE_BYTES
    if len(data) - cipher_at < TAG_BYTES:
        raise EnvelopeError("E5101", f"after the header there are {max(len(data) - nonce_at, 0)} bytes; a "
                                     f"{NONCE_BYTES}-byte nonce and a {TAG_BYTES}-byte GCM tag at least are needed")
    return Envelope(content_type=content_type, key_id=key_id, nonce=data[nonce_at:cipher_at],
                    ciphertext=data[cipher_at:], header=data[:nonce_at])


def open_envelope(env: Envelope, key: bytes, source_id: str) -> bytes:
    """Decrypt and authenticate an envelope for ``source_id`` (interfaces.md §5, R-8.2.2.2).

    Raises EnvelopeError E5103 when authentication fails (wrong key, altered bytes, or an envelope sealed
    for another source), E5101 when the key is not 32 bytes or the envelope's parts have wrong sizes.
    """
    if len(key) != KEY_BYTES:
        raise EnvelopeError("E5101", f"the key is {len(key)} bytes; AES-256 needs {KEY_BYTES}")
    if len(env.nonce) != NONCE_BYTES or len(env.ciphertext) < TAG_BYTES:
        raise EnvelopeError("E5101", "the nonce must be 12 bytes and the ciphertext at least the 16-byte tag")
    try:
        return AESGCM(bytes(key)).decrypt(env.nonce, env.ciphertext, _aad(env.header, source_id))
    except InvalidTag:
        raise EnvelopeError("E5103", f"authentication failed for source {source_id!r} with key id "
                                     f"{env.key_id!r}: wrong key, altered bytes, or sealed for another "
                                     "source") from None


def seal(plaintext: bytes, *, key: bytes, key_id: str, content_type: int, source_id: str,
         nonce: bytes | None = None) -> bytes:
    """Encrypt ``plaintext`` into an envelope for ``source_id`` (interfaces.md §5, R-5.2.2.6).

    The nonce is 12 fresh random bytes unless one is given (for test vectors only: a nonce must never be
    used twice with one key). Raises ValueError for a key that is not 32 bytes, a key id that is not 1–255
    ASCII characters, an unknown content type or a nonce that is not 12 bytes.
    """
    if len(key) != KEY_BYTES:
        raise ValueError(f"the key must be {KEY_BYTES} bytes, got {len(key)}")
    if content_type not in CONTENT_TYPES:
        raise ValueError(f"unknown content type {content_type!r}")
    try:
        kid = key_id.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"the key id must be ASCII: {key_id!r}") from None
    if not 1 <= len(kid) <= MAX_KEY_ID:
        raise ValueError(f"the key id must be 1-{MAX_KEY_ID} characters, got {len(kid)}")
    if nonce is None:
        nonce = os.urandom(NONCE_BYTES)
    elif len(nonce) != NONCE_BYTES:
        raise ValueError(f"the nonce must be {NONCE_BYTES} bytes, got {len(nonce)}")
    header = _header(content_type, kid)
    return header + bytes(nonce) + AESGCM(bytes(key)).encrypt(bytes(nonce), bytes(plaintext),
                                                              _aad(header, source_id))
