"""Filling gaps (R-9.3.2.1) and repairing minor anomalies (R-9.3.1). docs/gaps.md, "Filling".

In the standard's order, per open gap (apps/quality/gaps.py finds them):
1. re-fetch: a source that can resend (an edge or gateway source, over MQTT) gets a ``resend`` command for the
   gap's range through the command service; the gap then waits GAP_REFETCH_WAIT_S for real readings. Gap
   detection removes or shrinks the gap as they arrive: a real reading wins.
2. linear interpolation between the readings either side, for gaps up to GAP_INTERPOLATE_MAX_S;
3. the same hours of the previous day, else of the previous week, of the same series, pinned to the readings
   either side so that a register's totals reconcile (apps/quality/filling/sql.py, PROFILE), for gaps up to
   GAP_PROFILE_MAX_S. Longer gaps, or gaps with no usable profile, stay open and listed.

Every point is stored through ``ingest_readings`` (patched=True: flagged "patched"; only a trusted process may),
with its method and basis beside it (``quality.Fill``); the gap becomes "filled" with its method, audited. A real
reading arriving later for the time of a fill wins: ``supersede_fills``, called by ingest_readings, writes its
value as a revision of the fill through the revision writer. A minor anomaly (one suspect point between healthy
neighbours) is repaired by interpolation as a revision flagged "repaired" (``repair_anomalies``)."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.accounts import access
from apps.accounts.access import Action, SystemPrincipal
from apps.core.errors import CarbonParkError
from apps.core.services import record_change
from apps.ingestion.models import Flag
from apps.quality import errors
from apps.quality.filling import sql
from apps.quality.gaps import find_gaps, interpolation_plan
from apps.quality.models import Fill, Gap
from apps.sources.models import Command, DataSource

ACTOR = "fill_gaps"
LOCK = 0x66696C6C  # "fill": one run at a time (session-level advisory lock: each gap commits on its own)
RESEND_PROTOCOLS = frozenset({DataSource.Protocol.MQTT_JSON, DataSource.Protocol.MQTT_TLV})
LAGS = {86400: Fill.Method.PROFILE_DAY, 7 * 86400: Fill.Method.PROFILE_WEEK}
FMT = "%Y-%m-%d %H:%M:%S"


def can_resend(source: DataSource) -> bool:
    """A source the platform can ask to resend a range (R-9.3.2.1's re-fetch): one that speaks MQTT to us (an
    edge agent's channel, with its buffer of ≥ 72 h) or sits behind an edge gateway. Sources the platform polls
    (Modbus, DL/T 645, OPC UA read their present value only), HTTP pushers, files and third parties cannot."""
    return source.kind != DataSource.Kind.GATEWAY and (source.protocol in RESEND_PROTOCOLS
                                                       or source.gateway_id is not None)


@dataclass
class FillRun:
    asked: int = 0        # resend commands issued
    waiting: int = 0      # gaps still within their wait
    linear: int = 0       # gaps filled by interpolation
    profile: int = 0      # gaps filled by a profile
    points: int = 0       # points stored
    unfilled: int = 0     # gaps no method could fill (left open)
    repaired: int = 0     # anomalies repaired
    busy: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def _local(ts: datetime, tz: ZoneInfo) -> str:
    return timezone.localtime(ts, tz).strftime(FMT)


def _ask_resend(gap: Gap, now: datetime, wait_s: int) -> None:
    from apps.sources.services.commands import create_command

    tz = ZoneInfo(gap.source.park.time_zone)
    # the points strictly between the readings either side (the command's times are whole seconds)
    params = {"from": _local(gap.start + timedelta(seconds=1), tz), "to": _local(gap.end - timedelta(seconds=1), tz)}
    cmd = create_command(actor=SystemPrincipal(ACTOR), source=gap.source, type=Command.Type.RESEND, params=params,
                         ttl=timedelta(seconds=max(wait_s, 60)))
    Gap.objects.filter(pk=gap.pk, state=Gap.State.OPEN).update(refetch_at=now, refetch_command=cmd, updated=now)


def fill_gaps(*, now: datetime | None = None, gap_ids=None, force: bool = False) -> FillRun:
    """Fill the open gaps in the standard's order (R-9.3.2.1; module docstring), then repair minor anomalies
    (R-9.3.1). ``gap_ids``: only these; ``force``: skip the re-fetch and its wait (an administrator's "fill now").
    Gap detection runs first, so that real readings already stored close their gaps before anything is filled.
    Idempotent: a filled gap is never filled again, and a point already stored is never stored twice."""
    started = time.monotonic()
    now = now or timezone.now()
    run = FillRun()
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", [LOCK])
        if not cur.fetchone()[0]:
            return FillRun(busy=True, seconds=time.monotonic() - started)
    try:
        if find_gaps().busy:  # a detection in progress: its results first, at the next run
            run.busy = True
            return run
        _fill(run, now, gap_ids, force)
        if gap_ids is None and settings.GAP_REPAIR_ANOMALIES:
            run.repaired = repair_anomalies(now=now)
    finally:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", [LOCK])
        run.seconds = time.monotonic() - started
    return run


def _fill(run: FillRun, now: datetime, gap_ids, force: bool) -> None:
    wait = timedelta(seconds=settings.GAP_REFETCH_WAIT_S)
    qs = Gap.objects.filter(state=Gap.State.OPEN).select_related("source", "source__park", "data_item")
    if gap_ids is not None:
        qs = qs.filter(pk__in=list(gap_ids))
    due = []
    for gap in qs.order_by("start")[:settings.GAP_FILL_BATCH]:
        if not force and can_resend(gap.source) and gap.refetch_at is None:
            _ask_resend(gap, now, settings.GAP_REFETCH_WAIT_S)
            run.asked += 1
        elif not force and gap.refetch_at is not None and now < gap.refetch_at + wait:
            run.waiting += 1
        else:
            due.append(gap)
    if not due:
        return
    ids = [g.pk for g in due]
    plans: dict[int, tuple[str, list]] = {}
    for p in interpolation_plan(ids, span_s=settings.GAP_INTERPOLATE_MAX_S):
        plans.setdefault(p.gap_id, (Fill.Method.LINEAR, []))[1].append((p.ts, p.value, {}))
    rest = [i for i in ids if i not in plans]
    if rest and settings.GAP_PROFILE_MAX_S > 0:
        with connection.cursor() as cur:
            cur.execute(sql.PROFILE, {"ids": rest, "span": settings.GAP_PROFILE_MAX_S, "lags": list(LAGS)})
            for gap_id, ts, value, lag_s, ref_ts, ref_value, register in cur.fetchall():
                plans.setdefault(gap_id, (LAGS[lag_s], []))[1].append(
                    (ts, value, {"reference": {"ts": ref_ts.isoformat(), "value": ref_value},
                                 "scaling": "register" if register else "offset"}))
    neighbours = {}
    with connection.cursor() as cur:
        cur.execute(sql.NEIGHBOURS, {"ids": list(plans)})
        for gap_id, a_id, va, b_id, vb in cur.fetchall():
            neighbours[gap_id] = (a_id, va, b_id, vb)
    for gap in due:
        method, points = plans.get(gap.pk, (None, None))
        if not points or gap.pk not in neighbours:
            run.unfilled += 1
            continue
        stored = _store(gap, method, points, neighbours[gap.pk], now)
        if stored is None:
            continue
        run.points += stored
        if method == Fill.Method.LINEAR:
            run.linear += 1
        else:
            run.profile += 1


def _store(gap: Gap, method: str, points: list, neighbours: tuple, now: datetime) -> int | None:
    """Store one gap's points through ingest_readings, flagged "patched", their basis beside them, and mark the
    gap filled; all or nothing. None when the gap was no longer open (another run, a person)."""
    from apps.ingestion.services import ingest_readings

    a_id, va, b_id, vb = neighbours
    base = {"from": {"reading": a_id, "ts": gap.start.isoformat(), "value": va},
            "to": {"reading": b_id, "ts": gap.end.isoformat(), "value": vb}}
    if method != Fill.Method.LINEAR:
        base["profileLagS"] = next(lag for lag, m in LAGS.items() if m == method)
    source, item = gap.source, gap.data_item
    with transaction.atomic():
        locked = Gap.objects.select_for_update().filter(pk=gap.pk, state=Gap.State.OPEN).first()
        if locked is None or (locked.end, locked.interval_s) != (gap.end, gap.interval_s):
            return None  # filled or set aside meanwhile, or changed by real readings: the next run sees it anew
        records = [{"sourceId": source.source_id, "dataCode": item.code, "timestamp": ts.isoformat(),
                    "value": value} for ts, value, _ in points]
        result = ingest_readings(records, channel="fill", actor=SystemPrincipal(ACTOR), patched=True, now=now)
        with connection.cursor() as cur:
            cur.execute(sql.FILL_ROWS, {
                "gap": gap.pk, "method": method, "now": now, "source": source.pk, "item": item.pk,
                "batch": result.batch_id, "t": [p[0] for p in points], "v": [p[1] for p in points],
                "b": [json.dumps({**base, **extra}) for _, _, extra in points]})
            count = cur.rowcount
        before = {"state": locked.state}
        locked.state, locked.method, locked.filled_at, locked.filled_points = Gap.State.FILLED, method, now, count
        locked.updated = now
        locked.save(update_fields=["state", "method", "filled_at", "filled_points", "updated"])
        record_change(actor=SystemPrincipal(ACTOR), action="gap.fill", obj=locked, before=before,
                      after={"state": "filled", "method": method, "points": count, "rejected": len(result.rejected),
                             "batch": result.batch_id, "basis": base},
                      park_code=source.park.code)
    return count


# --- a real reading wins ------------------------------------------------------------------------------------


def supersede_fills(rows, *, actor_label: str, now: datetime) -> int:
    """Real readings that arrived for the time of a fill (rows of ingest_readings, their identity stored before
    as a patched point): each becomes the effective value of its reading, a revision written by the revision
    writer with the real reading's own flags; the fill stays visible as what it was, marked superseded
    (R-9.3.2.1: a real reading wins; R-9.3.2.3: nothing destroyed). Runs in the ingest batch's transaction."""
    from apps.corrections.models import Correction
    from apps.corrections.services import revise_readings

    series = defaultdict(list)
    for r in rows:
        series[(r.park_id, r.source_pk, r.item_pk)].append(r)
    count = 0
    for (park_id, source_pk, item_pk), real in series.items():
        start, end = min(r.ts for r in real), max(r.ts for r in real)
        correction = _system_correction(Correction.Kind.LATE_READING, park_id, source_pk, item_pk, start, end,
                                        len(real), actor_label, now,
                                        "real readings arrived for the times of filled points (R-9.3.2.1)")
        n = revise_readings(correction, written_by=actor_label, now=now,
                            values=[(r.ts, r.value, r.flags) for r in real])
        Fill.objects.filter(source_id=source_pk, data_item_id=item_pk, ts__in=[r.ts for r in real],
                            superseded_at=None).update(superseded_at=now)
        _audit_system_correction(correction, n, [{"ts": r.ts.isoformat(), "value": r.value} for r in real])
        count += n
    return count


def _system_correction(kind, park_id, source_pk, item_pk, start, end, count, label, now, reason):
    from apps.corrections.models import Correction

    return Correction.objects.create(
        park_id=park_id, source_id=source_pk, data_item_id=item_pk, start=start, end=end, kind=kind,
        reason=reason, readings_in_range=count, requested_by_label=label[:150], requested_at=now,
        state=Correction.State.APPLIED, decided_by_label=label[:150], decided_at=now, applied_at=now,
        revised_count=count)


def _audit_system_correction(correction, revised: int, values: list) -> None:
    from apps.accounts.models import Park

    record_change(actor=SystemPrincipal(correction.requested_by_label), action=f"correction.{correction.kind}",
                  obj=correction, reason=correction.reason, park_code=Park.objects.get(pk=correction.park_id).code,
                  after={"source": correction.source_id, "dataItem": correction.data_item_id,
                         "start": correction.start.isoformat(), "end": correction.end.isoformat(),
                         "revised": revised, "values": values[:200]})


# --- minor anomalies ------------------------------------------------------------------------------------------


def repair_anomalies(*, now: datetime | None = None, full: bool = False, limit: int = 10000) -> int:
    """Repair minor anomalies by interpolation (R-9.3.1): a single reading a check after storage found suspect,
    between healthy neighbours (apps/quality/filling/sql.py, REPAIRS), gets a revision flagged "repaired" with
    the neighbours' interpolation, written by the revision writer under a correction the platform makes (kind
    "repair"), audited with its method and basis. The hits of the last GAP_REPAIR_LOOKBACK_S are looked at
    (``full``: all). Never twice: a reading revised before (by anyone) is left alone."""
    from apps.corrections.models import Correction
    from apps.corrections.services import revise_readings

    now = now or timezone.now()
    since = datetime(1970, 1, 1, tzinfo=UTC) if full else now - timedelta(
        seconds=settings.GAP_REPAIR_LOOKBACK_S)
    with connection.cursor() as cur:
        cur.execute(sql.REPAIRS, {"since": since, "limit": limit})
        found = cur.fetchall()
    series = defaultdict(list)
    for row in found:
        series[row[:3]].append(row)
    total = 0
    for (park_id, source_pk, item_pk), rows in series.items():
        with transaction.atomic():
            correction = _system_correction(
                Correction.Kind.REPAIR, park_id, source_pk, item_pk, rows[0][3], rows[-1][3], len(rows), ACTOR,
                now, "minor anomalies repaired by linear interpolation between healthy neighbours (R-9.3.1)")
            n = revise_readings(correction, written_by=ACTOR, now=now,
                                values=[(r[3], r[12], Flag.REPAIRED) for r in rows])
            basis = [{"ts": r[3].isoformat(), "reading": r[4], "was": r[5], "repaired": r[12], "method": "linear",
                      "from": {"reading": r[6], "ts": r[7].isoformat(), "value": r[8]},
                      "to": {"reading": r[9], "ts": r[10].isoformat(), "value": r[11]}} for r in rows]
            _audit_system_correction(correction, n, basis)
            total += n
    return total


# --- a person's actions on the list ---------------------------------------------------------------------------


def _gap_for(actor, gap_id) -> Gap:
    """The gap as the actor may see it; another park's gap answers exactly like an unknown one (E3011)."""
    try:
        gap_id = int(gap_id)
    except (TypeError, ValueError, OverflowError):
        raise CarbonParkError(errors.E3030, id=str(gap_id)[:20]) from None
    gap = access.restrict(Gap.objects.select_related("park"), actor, Action.VIEW).filter(pk=gap_id).first() \
        if -2**63 <= gap_id < 2**63 else None
    if gap is None:
        raise CarbonParkError(errors.E3030, id=str(gap_id)[:20])
    access.require(actor, Action.MANAGE, gap.park_id)
    return gap


def fill_gap_now(*, actor, gap_id) -> FillRun:
    """An administrator of the gap's park has it filled now, without waiting for a resend (R-9.3.2.1); audited."""
    gap = _gap_for(actor, gap_id)
    if gap.state != Gap.State.OPEN:
        raise CarbonParkError(errors.E3031, state=gap.get_state_display())
    record_change(actor=actor, action="gap.fill_now", obj=gap, before={"state": gap.state},
                  park_code=gap.park.code)
    return fill_gaps(gap_ids=[gap.pk], force=True)


def ignore_gap(*, actor, gap_id, reason: str = "") -> Gap:
    """An administrator of the gap's park sets it aside: state "ignored", never filled nor changed by detection
    (a planned shutdown, a meter out of service); audited with the reason."""
    gap = _gap_for(actor, gap_id)
    if gap.state != Gap.State.OPEN:
        raise CarbonParkError(errors.E3031, state=gap.get_state_display())
    before = {"state": gap.state}
    gap.state, gap.updated = Gap.State.IGNORED, timezone.now()
    gap.save(update_fields=["state", "updated"])
    record_change(actor=actor, action="gap.ignore", obj=gap, before=before, after={"state": gap.state},
                  reason=str(reason)[:2000], park_code=gap.park.code)
    return gap
