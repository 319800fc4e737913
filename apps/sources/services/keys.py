"""Key rings: one active AES-256 key per source (per park for files), rotation, retirement
(R-5.2.2.6 rotation at most every 30 days, R-8.2.2.3 keys protected in transit and at rest,
interfaces.md §5). Key material leaves the platform only inside a rotate_key command over TLS or
once, at provisioning; it is never logged and never stored unsealed.

The key ring sits below the downlink commands: ``commands`` reads key material and switches the ring
when a device answers; starting a device's rotation, which sends a command, is ``rotation``'s."""

from __future__ import annotations

import base64
import os
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.crypto import open_secret, seal_secret
from apps.core.services import bump_config_version, record_change
from apps.sources.models import DataSource, SourceKey

ROTATION_DAYS = int(getattr(settings, "KEY_ROTATION_DAYS", 30))
# Retired keys keep decrypting long enough for a device that was offline 72 h to backfill within
# the next 24 h (interfaces.md §5: ≥ 72 h + 24 h).
RETIRED_DECRYPT_HOURS = int(getattr(settings, "KEY_RETIRED_DECRYPT_HOURS", 96))


def _new_key_id(owner: str) -> str:
    return f"{owner[:40]}.{timezone.now():%Y%m%d}.{secrets.token_hex(4)}"


def key_material(key: SourceKey) -> bytes:
    """The 32 key bytes. Callers keep them in memory only."""
    return open_secret(key.sealed, key.key_id)


def _create(*, source: DataSource | None = None, park=None, state: str) -> tuple[SourceKey, bytes]:
    material = os.urandom(32)
    owner = source.source_id if source else f"park-{park.code}"
    key_id = _new_key_id(owner)
    now = timezone.now()
    key = SourceKey.objects.create(key_id=key_id, source=source, park=park, sealed=seal_secret(material, key_id),
                                   state=state, activated_at=now if state == SourceKey.State.ACTIVE else None)
    return key, material


@transaction.atomic
def provision_key(*, actor, source: DataSource) -> tuple[SourceKey, str]:
    """Give a source its first active key and return it base64-encoded, to be loaded into the device
    once over an authenticated channel. Refused when the source already has one: rotate instead."""
    if source.keys.filter(state=SourceKey.State.ACTIVE).exists():
        raise ValueError(f"{source.source_id} already has an active key; rotate it instead")
    key, material = _create(source=source, state=SourceKey.State.ACTIVE)
    record_change(actor=actor, action="key.provision", obj=key, after={"key_id": key.key_id},
                  park_code=source.park.code)
    bump_config_version()
    return key, base64.b64encode(material).decode()


@transaction.atomic
def pending_key(*, actor, source: DataSource) -> SourceKey:
    """The source's pending key, the one a rotation under way sends; made (and audited) when there is none."""
    pending = source.keys.filter(state=SourceKey.State.PENDING).first()
    if pending is None:
        pending, _material = _create(source=source, state=SourceKey.State.PENDING)
        record_change(actor=actor, action="key.rotate.start", obj=pending, after={"key_id": pending.key_id},
                      park_code=source.park.code)
        bump_config_version()
    return pending


def activate_pending_key(*, source: DataSource, key_id: str) -> SourceKey | None:
    """The device acknowledged rotate_key: the pending key becomes active, the previous one retires."""
    key = source.keys.filter(key_id=key_id, state=SourceKey.State.PENDING).first()
    if key is None:
        return None
    now = timezone.now()
    for old in source.keys.filter(state=SourceKey.State.ACTIVE):
        old.state, old.retired_at = SourceKey.State.RETIRED, now
        old.decrypt_until = now + timedelta(hours=RETIRED_DECRYPT_HOURS)
        old.save(update_fields=["state", "retired_at", "decrypt_until"])
    key.state, key.activated_at = SourceKey.State.ACTIVE, now
    key.save(update_fields=["state", "activated_at"])
    record_change(actor="device", action="key.rotate.done", obj=key, after={"key_id": key_id},
                  park_code=source.park.code)
    bump_config_version()
    return key


def abandon_pending_key(*, source: DataSource, key_id: str, reason: str) -> None:
    """The device refused the new key, or never answered: it must not decrypt anything after all."""
    now = timezone.now()
    n = source.keys.filter(key_id=key_id, state=SourceKey.State.PENDING).update(
        state=SourceKey.State.RETIRED, retired_at=now, decrypt_until=now)
    if n:
        record_change(actor="device", action="key.rotate.abandon", object_type="sources.sourcekey",
                      object_id=key_id, reason=reason, park_code=source.park.code)
        bump_config_version()


@transaction.atomic
def rotate_file_key(*, actor, park) -> SourceKey:
    """Files are encrypted per park; no device to wait for, so the new key is active at once."""
    now = timezone.now()
    for old in SourceKey.objects.filter(park=park, source__isnull=True, state=SourceKey.State.ACTIVE):
        old.state, old.retired_at = SourceKey.State.RETIRED, now
        old.decrypt_until = now + timedelta(hours=RETIRED_DECRYPT_HOURS)
        old.save(update_fields=["state", "retired_at", "decrypt_until"])
    key, _material = _create(park=park, state=SourceKey.State.ACTIVE)
    record_change(actor=actor, action="key.rotate.file", obj=key, after={"key_id": key.key_id}, park_code=park.code)
    bump_config_version()
    return key


def decryption_keys(now=None) -> dict[str, tuple[int | None, int | None, bytes, object]]:
    """key id → (source pk, park pk, key bytes, decrypt until or None) for every key that may decrypt
    now: active, pending (the device may switch before its ack arrives) and retired within their grace
    period (whose end the caller checks at use time)."""
    from django.db.models import Q

    now = now or timezone.now()
    keys = SourceKey.objects.filter(Q(state__in=[SourceKey.State.ACTIVE, SourceKey.State.PENDING])
                                    | Q(state=SourceKey.State.RETIRED, decrypt_until__gt=now))
    return {k.key_id: (k.source_id, k.park_id, key_material(k), k.decrypt_until if k.state == "retired" else None)
            for k in keys}
