"""Downlink commands (R-5.3.1, interfaces.md §2): created by people or the scheduler, published with
QoS 1 by the MQTT channel, tracked pending → delivered → acknowledged / failed / expired.

Above the key ring (``keys``: a rotate_key command carries key material, its answer switches the ring)
and below the rotation (``rotation``), which is what sends rotate_key commands."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.core.services import record_change
from apps.sources.models import Command, DataSource, SourceKey
from apps.sources.services.keys import abandon_pending_key, activate_pending_key, key_material
from apps.sources.services.sources import save_source

DEFAULT_TTL = timedelta(hours=1)


def _validate(type_: str, params: dict) -> dict:
    if type_ not in Command.Type.values:
        raise ValidationError({"type": _("Unknown command type %(type)s.") % {"type": type_}})
    params = dict(params or {})
    if type_ == Command.Type.SET_INTERVAL:
        seconds = params.get("seconds")
        if type(seconds) is not int or not 60 <= seconds <= 3600:
            raise ValidationError({"params": _("set_interval takes seconds, a whole number from 60 to 3600 "
                                               "(R-5.2.1.4).")})
    elif type_ == Command.Type.RESEND:
        if not params.get("from") or not params.get("to"):
            raise ValidationError({"params": _("resend takes from and to (YYYY-MM-DD HH:MM:SS).")})
    elif type_ == Command.Type.ROTATE_KEY and not params.get("keyId"):
        raise ValidationError({"params": _("rotate_key is started by the key rotation, not by hand.")})
    return params


@transaction.atomic
def create_command(*, actor, source: DataSource, type: str, params: dict | None = None,
                   ttl: timedelta = DEFAULT_TTL) -> Command:
    """Queue a downlink command for a source; the MQTT channel publishes it (QoS 1)."""
    params = _validate(type, params or {})
    label = getattr(actor, "audit_label", None) or (actor.get_username() if hasattr(actor, "get_username")
                                                     else str(actor))
    cmd = Command.objects.create(cmd_id=uuid.uuid4().hex, source=source, type=type, params=params,
                                 created_by=label[:150], expires_at=timezone.now() + ttl)
    record_change(actor=actor, action="command.create", obj=cmd, after={"type": type, "params": params},
                  park_code=source.park.code)
    return cmd


def command_payload(cmd: Command) -> dict:
    """The wire form of interfaces.md §2; a rotate_key command carries its key only here, on its
    way out over TLS."""
    params = dict(cmd.params)
    if cmd.type == Command.Type.ROTATE_KEY:
        key = SourceKey.objects.get(key_id=params["keyId"])
        params["key"] = base64.b64encode(key_material(key)).decode()
    return {"cmdId": cmd.cmd_id, "type": cmd.type, "params": params,
            "expiresAt": timezone.localtime(cmd.expires_at).isoformat(timespec="seconds")}


def dispatch_pending(publish, *, limit: int = 100) -> int:
    """Publish pending commands. ``publish(topic, payload: bytes) -> bool`` returns True once the
    broker has acknowledged the QoS 1 publish. Rows are claimed with SKIP LOCKED, so several
    consumers never send the same command twice."""
    import orjson

    now = timezone.now()
    sent = 0
    expire_overdue(now)
    with transaction.atomic():
        claimed = list(Command.objects.select_for_update(skip_locked=True).select_related("source__park")
                       .filter(state=Command.State.PENDING, expires_at__gt=now).order_by("created_at")[:limit])
        for cmd in claimed:
            topic = f"carbonpark/{cmd.source.park.code}/{cmd.source.source_id}/cmd"
            if publish(topic, orjson.dumps(command_payload(cmd))):
                cmd.state, cmd.published_at = Command.State.DELIVERED, timezone.now()
                cmd.save(update_fields=["state", "published_at"])
                sent += 1
    return sent


def expire_overdue(now=None) -> int:
    """Commands not acknowledged before expiresAt end as expired; a rotation they carried is abandoned."""
    now = now or timezone.now()
    overdue = list(Command.objects.select_related("source").filter(
        state__in=[Command.State.PENDING, Command.State.DELIVERED], expires_at__lte=now))
    for cmd in overdue:
        cmd.state = Command.State.EXPIRED
        cmd.save(update_fields=["state"])
        if cmd.type == Command.Type.ROTATE_KEY:
            abandon_pending_key(source=cmd.source, key_id=cmd.params.get("keyId", ""), reason="rotate_key expired")
    return len(overdue)


@transaction.atomic
def record_ack(*, source: DataSource, payload: dict) -> Command | None:
    """The device's cmd/ack: {"cmdId", "result": "ok" | "error", "message"}. A rotate_key ack switches
    the key ring; anything else records the result."""
    cmd = Command.objects.select_for_update().filter(cmd_id=str(payload.get("cmdId", "")), source=source).first()
    if cmd is None or cmd.state in (Command.State.ACKNOWLEDGED, Command.State.FAILED):
        return cmd
    ok = payload.get("result") == "ok"
    cmd.state = Command.State.ACKNOWLEDGED if ok else Command.State.FAILED
    cmd.acknowledged_at = timezone.now()
    cmd.result = "ok" if ok else "error"
    cmd.message = str(payload.get("message", ""))[:2000]
    cmd.save(update_fields=["state", "acknowledged_at", "result", "message"])
    if cmd.type == Command.Type.ROTATE_KEY:
        if ok:
            activate_pending_key(source=source, key_id=cmd.params.get("keyId", ""))
        else:
            abandon_pending_key(source=source, key_id=cmd.params.get("keyId", ""), reason=cmd.message)
    if cmd.type == Command.Type.SET_INTERVAL and ok:
        save_source(actor=f"device:{source.source_id}", source=source, expected_interval_s=cmd.params["seconds"],
                    reason=f"set_interval {cmd.cmd_id} acknowledged")
    return cmd
