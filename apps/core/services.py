"""Kernel services: the explicit audit record and the configuration version bump."""

from __future__ import annotations

from typing import Any

from django.db import connection

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
    """Write one audit row: who, when, before, after, why (R-7.3.2, R-9.3.2.2, R-9.3.2.3)."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
    return AuditEntry.objects.create(
        **actor_fields(actor), action=action, object_type=object_type, object_id=object_id,
        object_repr=str(obj)[:200] if obj is not None else "", before=before, after=after,
        reason=reason, park_code=park_code,
    )


def bump_config_version(name: str = INGEST_CONFIG) -> None:
    """Tell every ingesting process to reload sources, catalog and rules once this transaction commits
    (R-9.2.3: the rule library is loaded dynamically, no restart)."""
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO core_configversion (name, version) VALUES (%s, nextval('core_config_version_seq')) "
            "ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version",
            [name],
        )
