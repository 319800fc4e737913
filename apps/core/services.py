"""Kernel services: the explicit audit record and the configuration version bump."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.core.chain import GENESIS, HASHED_FIELDS, chain_lock_key, entry_digest
from apps.core.models import AuditEntry

INGEST_CONFIG = "ingest"


def actor_fields(actor: Any) -> dict:
    """An actor is a user, an API token, or a label naming a process ("mqtt", "demo" …)."""
    from django.contrib.auth.models import AbstractBaseUser

    if actor is None:
        return {"actor": None, "actor_label": "system"}
    if isinstance(actor, AbstractBaseUser):
        return {"actor": actor if actor.pk else None, "actor_label": actor.get_username()}
    label = getattr(actor, "audit_label", None) or str(actor)
    return {"actor": None, "actor_label": label[:150]}


def record_change(*, actor: Any, action: str, obj: Any = None, object_type: str = "", object_id: str = "",
                  before: dict | None = None, after: dict | None = None, reason: str = "",
                  park_code: str = "") -> AuditEntry:
    """Write one audit row: who, when, before, after, why (R-7.3.2, R-9.3.2.2, R-9.3.2.3), appended to its
    park's hash chain (R-9.3.2.3: records cannot be altered unnoticed).

    Appends to one chain are serialised by a transaction-level advisory lock on that chain, held until the
    caller's transaction ends: the next writer reads the head only once this record is committed (or rolled
    back), so a chain never forks and its ``seq`` has no gaps; the unique (park_code, seq) constraint holds
    even if the lock were skipped. Different parks never wait for each other. A transaction that records in
    several parks takes their locks in the order it records; PostgreSQL breaks the rare opposite-order pair
    with a deadlock error (retryable, SQLSTATE 40P01). A long transaction should record at its end: the
    chain's lock is held from the record to the commit."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
    entry = AuditEntry(**actor_fields(actor), action=action, object_type=object_type, object_id=str(object_id),
                       object_repr=str(obj)[:200] if obj is not None else "", before=before, after=after,
                       reason=reason, park_code=park_code or "")
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [chain_lock_key(entry.park_code)])
            cur.execute("SELECT seq, hash FROM core_auditentry WHERE park_code = %s ORDER BY seq DESC LIMIT 1",
                        [entry.park_code])
            head = cur.fetchone()
        entry.seq, entry.prev_hash = (head[0] + 1, head[1]) if head else (1, GENESIS)
        entry.at = timezone.now()  # after the lock: time order follows chain order
        entry.hash = entry_digest({name: getattr(entry, name) for name in HASHED_FIELDS})
        entry.save(force_insert=True)
    return entry


def bump_config_version(name: str = INGEST_CONFIG) -> None:
    """Tell every ingesting process to reload sources, catalog and rules once this transaction commits
    (R-9.2.3: the rule library is loaded dynamically, no restart)."""
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO core_configversion (name, version) VALUES (%s, nextval('core_config_version_seq')) "
            "ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version",
            [name],
        )
