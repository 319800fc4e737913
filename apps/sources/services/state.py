"""Device state: online/offline from the status topic and the Last Will, last seen, silence
(R-8.1.2.1: the platform learns of abnormal disconnects; R-9.1.4 timeliness)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import DurationField, ExpressionWrapper, F, Q
from django.utils import timezone

from apps.quality.models import Alarm
from apps.quality.services import close_alarms, raise_alarm
from apps.sources import errors
from apps.sources.models import DataSource, DeviceState, StateChange

SILENT_FACTOR = 3


@transaction.atomic
def record_status(*, source: DataSource, state: str, at: datetime | None = None, reason: str = "") -> bool:
    """Apply a status report. A change writes a history row; going offline raises an alarm at once
    (visible in the admin when this commits), coming back closes it. Returns True on a change."""
    at = at or timezone.now()
    current, _created = DeviceState.objects.select_for_update().get_or_create(source=source)
    if current.state == state:
        return False
    current.state, current.state_since = state, at
    current.save(update_fields=["state", "state_since"])
    StateChange.objects.create(source=source, state=state, at=at, reason=reason[:200])
    if state == DeviceState.State.OFFLINE:
        msg = errors.E6001.messages(source=source.source_id)
        raise_alarm(park_id=source.park_id, source_id=source.pk, kind=Alarm.Kind.OFFLINE, code="E6001",
                    message_zh=msg["zh"], message_en=msg["en"])
    elif state == DeviceState.State.ONLINE:
        close_alarms(source=source, kind=Alarm.Kind.OFFLINE)
    return True


def touch(source_pks, at: datetime | None = None) -> None:
    """Sources that just delivered readings: last seen now, no longer silent. Runs after the ingest
    transaction, as its own short statements; rows another batch is touching at this very moment are
    skipped (SKIP LOCKED: that batch sets the same time), so concurrent batches never queue on them.
    ``source_pks``: ids seen at ``at``, or a mapping {id: when} (the web workers' coalesced last-seen marks,
    apps/ingestion/lastseen.py)."""
    if not source_pks:
        return
    seen_at = dict(source_pks) if isinstance(source_pks, dict) else dict.fromkeys(source_pks, at)
    pks = sorted(seen_at)
    ats = [seen_at[pk] for pk in pks]
    with connection.cursor() as cur:
        cur.execute(
            "WITH v AS (SELECT * FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(s, at)), "
            "locked AS (SELECT source_id FROM sources_devicestate WHERE source_id = ANY(%s::bigint[]) "
            "ORDER BY source_id FOR UPDATE SKIP LOCKED) "
            "UPDATE sources_devicestate d SET last_seen_at = GREATEST(d.last_seen_at, v.at), silent = false "
            "FROM locked JOIN v ON v.s = locked.source_id WHERE d.source_id = locked.source_id "
            "RETURNING d.source_id",
            [pks, ats, pks])
        done = {row[0] for row in cur.fetchall()}
        missing = [pk for pk in pks if pk not in done]
        if missing:
            cur.execute(
                "INSERT INTO sources_devicestate (source_id, state, state_since, last_seen_at, silent) "
                "SELECT s, 'unknown', NULL, at, false FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(s, at) "
                "WHERE NOT EXISTS (SELECT 1 FROM sources_devicestate d WHERE d.source_id = s) "
                "ON CONFLICT (source_id) DO NOTHING", [missing, [seen_at[pk] for pk in missing]])


def flag_silent_sources(now: datetime | None = None) -> int:
    """Sources silent for longer than three expected intervals get flagged and an alarm (R-9.1.4); so do
    sources that never reported within three intervals of their registration (E6004), whatever their
    online/offline state says. Gateways are left out: they send no data, their liveness is the Last Will."""
    now = now or timezone.now()
    flagged = _flag_never_reported(now)
    states = DeviceState.objects.select_related("source").filter(
        silent=False, last_seen_at__isnull=False, source__enabled=True).exclude(
        source__kind=DataSource.Kind.GATEWAY)
    for st in states:
        limit = timedelta(seconds=SILENT_FACTOR * st.source.expected_interval_s)
        if now - st.last_seen_at > limit:
            DeviceState.objects.filter(pk=st.pk).update(silent=True)
            msg = errors.E6002.messages(source=st.source.source_id, seconds=int(limit.total_seconds()))
            raise_alarm(park_id=st.source.park_id, source_id=st.source_id, kind=Alarm.Kind.SILENT, code="E6002",
                        message_zh=msg["zh"], message_en=msg["en"], severity="warn")
            flagged += 1
    return flagged


def _flag_never_reported(now: datetime) -> int:
    """E6004: enabled sources with no reading since registration for three expected intervals. Flags them
    silent (a DeviceState row is made if none) and opens one alarm each; closes the alarm once data came."""
    close_alarms(sources=DataSource.objects.filter(device_state__last_seen_at__isnull=False), code="E6004")
    candidates = (DataSource.objects.filter(enabled=True).exclude(kind=DataSource.Kind.GATEWAY)
                  .filter(Q(device_state__isnull=True) | Q(device_state__last_seen_at__isnull=True,
                                                          device_state__silent=False))
                  .annotate(limit=ExpressionWrapper(F("expected_interval_s") * timedelta(seconds=SILENT_FACTOR),
                                                    output_field=DurationField()))
                  .filter(created_at__lt=now - F("limit")))
    flagged = 0
    for source in candidates:
        DeviceState.objects.get_or_create(source=source)
        DeviceState.objects.filter(pk=source.pk, last_seen_at__isnull=True).update(silent=True)
        seconds = SILENT_FACTOR * source.expected_interval_s
        registered = timezone.localtime(source.created_at).strftime("%Y-%m-%d %H:%M:%S")
        msg = errors.E6004.messages(source=source.source_id, registered=registered, seconds=seconds)
        raise_alarm(park_id=source.park_id, source_id=source.pk, kind=Alarm.Kind.SILENT, code="E6004",
                    message_zh=msg["zh"], message_en=msg["en"], severity="warn")
        flagged += 1
    return flagged
