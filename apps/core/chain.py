"""The audit trail's hash chain: the canonical form of one record and its SHA-256 (R-7.3.2, R-9.3.2.3).

Pure functions, no models: the service that appends, the migration that chained the rows written before
the chain existed, and the verifier all hash through ``entry_digest``, so the three cannot drift apart.

The format is fixed: changing a byte of it breaks every existing chain. Hashed: the record's position in
its chain (``seq``), the previous record's hash, and every content field. Not hashed: the row id (a
database sequence, not content; order is ``seq``) and the ``actor`` foreign key, which PostgreSQL sets to
NULL when a user is deleted; the user's name at the time is hashed as ``actor_label``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

GENESIS = "0" * 64  # the prev_hash of the first record of every chain
PLATFORM_CHAIN = ""  # records that belong to no park (catalog, platform settings, log-ins) form this chain
HASHED_FIELDS = ("seq", "prev_hash", "at", "actor_label", "action", "object_type", "object_id", "object_repr",
                 "park_code", "before", "after", "reason")


def _canonical_json(value):
    """The JSON value as PostgreSQL's jsonb gives it back: a float with no fraction reads back as an
    integer (2.0 and 1e16 may come back as 2 and 10000000000000000), so both are hashed as integers."""
    if isinstance(value, dict):
        return {k: _canonical_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical_json(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def canonical_bytes(fields: dict) -> bytes:
    """One record's hashed fields as sorted, compact UTF-8 JSON; the time in UTC to the microsecond."""
    at = fields["at"]
    if isinstance(at, datetime):
        at = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    payload = {name: fields.get(name) for name in HASHED_FIELDS}
    payload["at"] = at
    for name in ("before", "after"):
        # through JSON first, as the JSON field stores it (non-string keys become strings, tuples lists)
        payload[name] = _canonical_json(json.loads(json.dumps(payload[name], allow_nan=False)))
    for name in ("prev_hash", "actor_label", "action", "object_type", "object_id", "object_repr", "park_code",
                 "reason"):
        payload[name] = payload[name] or ""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode()


def entry_digest(fields: dict) -> str:
    """SHA-256 (hex) of one record's canonical form, which includes the previous record's hash."""
    return hashlib.sha256(canonical_bytes(fields)).hexdigest()


def chain_lock_key(park_code: str) -> int:
    """A stable 63-bit key for pg_advisory_xact_lock, one per chain (same in every process)."""
    digest = hashlib.sha256(b"carbonpark.audit:" + park_code.encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1
