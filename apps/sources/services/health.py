"""Status reports from the MQTT status topic: online/offline, and what an edge gateway says of its devices
(R-8.1.2.1: the platform learns of abnormal disconnects and of devices that fail; interfaces §2 status topic).

A gateway's status payload (apps/edge/health.py) carries, beside ``state``:

- ``devices``: per device behind it, ``lastGoodPoll``, ``failures`` (consecutive failed polls), ``lastError``
  (code) and ``message``. Stored on the device's DeviceState; ``DEVICE_FAILURES`` failures in a row open an
  E6003 alarm on the device, a good poll closes it. Only devices registered behind this gateway are taken.
- ``refused``: sources whose data the broker refused (PUBACK >= 0x80, its ACL): an E6005 alarm on the gateway,
  closed when the gateway reports none.
- ``alarm`` events: ``buffer_evicted`` (E6006) and ``publish_refused`` (E6005).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.text import pg_safe
from apps.quality.models import Alarm
from apps.quality.services import close_alarms, raise_alarm, refresh_alarm
from apps.sources import errors
from apps.sources.models import DataSource, DeviceState
from apps.sources.services.state import record_status

log = logging.getLogger("carbonpark.sources")

DEVICE_FAILURES = 3  # consecutive failed polls before a device alarms (E6003)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def apply_status_report(*, source_id: str, payload: bytes) -> bool:
    """Apply one status-topic message of ``source_id`` (the topic's source). Returns False when ignored
    (unknown source or unreadable payload), which is logged; never raises on a bad payload."""
    source = DataSource.objects.filter(source_id=source_id).select_related("park").first()
    body = _body(payload)
    state = body.get("state") if body is not None else None
    if source is None or state not in ("online", "offline"):
        log.warning("status from %s ignored: %r", source_id, payload[:100])
        return False
    record_status(source=source, state=state, reason="mqtt status")
    if source.kind == DataSource.Kind.GATEWAY:
        apply_gateway_report(gateway=source, body=body)
    return True


def _body(payload: bytes) -> dict | None:
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        text = payload.decode("utf-8", "replace").strip()
        return {"state": text}
    if isinstance(body, str):
        return {"state": body}
    return body if isinstance(body, dict) else None


def _when(value, tz) -> datetime | None:
    """A reported time, or None when it is missing, malformed or implausible (before 2000, in the future)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value[:40])
        moment = (moment if moment.tzinfo else moment.replace(tzinfo=tz)).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    if not EARLIEST <= moment <= timezone.now() + timedelta(days=1):
        return None
    return moment


def _text(value, limit: int) -> str:
    return pg_safe(str(value)[:limit])[:limit] if value is not None else ""


@transaction.atomic
def apply_gateway_report(*, gateway: DataSource, body: dict) -> None:
    """Device health, refused sources and alarm events a gateway reports (R-8.1.2.1)."""
    tz = ZoneInfo(gateway.park.time_zone or settings.TIME_ZONE)
    now = timezone.now()
    devices = body.get("devices")
    if isinstance(devices, dict):
        members = {m.source_id: m for m in gateway.members.all()}
        for source_id, report in devices.items():
            member = members.get(source_id)
            if member is None or not isinstance(report, dict):
                log.warning("gateway %s reported %s, which is not registered behind it: ignored",
                            gateway.source_id, _text(source_id, 64))
                continue
            _device_health(gateway, member, report, tz, now)
    refused = body.get("refused")
    if isinstance(refused, dict):
        if refused:
            for source_id, detail in refused.items():
                detail = detail if isinstance(detail, dict) else {}
                _refused_alarm(gateway, _text(source_id, 64), detail)
        else:
            close_alarms(source=gateway, code="E6005")
    alarm = body.get("alarm")
    if alarm == "publish_refused":
        _refused_alarm(gateway, _text(body.get("sourceId"), 64), body)
    elif alarm == "buffer_evicted":
        msg = errors.E6006.messages(gateway=gateway.source_id, count=_text(body.get("evicted"), 20))
        raise_alarm(park_id=gateway.park_id, source_id=gateway.pk, kind=Alarm.Kind.DEVICE, code="E6006",
                    message_zh=msg["zh"], message_en=msg["en"])


def _device_health(gateway: DataSource, member: DataSource, report: dict, tz, now) -> None:
    failures = report.get("failures")
    failures = failures if isinstance(failures, int) and not isinstance(failures, bool) and failures >= 0 else 0
    code, detail = _text(report.get("lastError"), 8), _text(report.get("message"), 300)
    st, _created = DeviceState.objects.select_for_update().get_or_create(source=member)
    st.health_at = now
    st.last_good_poll_at = _when(report.get("lastGoodPoll"), tz) or st.last_good_poll_at
    st.consecutive_failures = min(failures, 2**31 - 1)
    st.last_error_code, st.last_error = code, detail
    st.save(update_fields=["health_at", "last_good_poll_at", "consecutive_failures", "last_error_code",
                           "last_error"])
    if failures >= DEVICE_FAILURES:
        msg = errors.E6003.messages(source=member.source_id, failures=failures, gateway=gateway.source_id,
                                    code=code or "-", detail=detail or "-")
        if not refresh_alarm(source=member, code="E6003", message_zh=msg["zh"], message_en=msg["en"], at=now):
            raise_alarm(park_id=member.park_id, source_id=member.pk, kind=Alarm.Kind.DEVICE, code="E6003",
                        message_zh=msg["zh"], message_en=msg["en"])
    elif failures == 0:
        close_alarms(source=member, code="E6003")


def _refused_alarm(gateway: DataSource, source_id: str, detail: dict) -> None:
    msg = errors.E6005.messages(gateway=gateway.source_id, source=source_id or "?",
                                reason_code=_text(detail.get("reasonCode"), 8), reason=_text(detail.get("reason"), 60))
    if not Alarm.objects.filter(source=gateway, code="E6005", state=Alarm.State.OPEN).exists():
        raise_alarm(park_id=gateway.park_id, source_id=gateway.pk, kind=Alarm.Kind.DEVICE, code="E6005",
                    message_zh=msg["zh"], message_en=msg["en"])
