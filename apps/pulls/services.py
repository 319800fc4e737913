"""Pull connectors: saving them (audited, the secret sealed) and running them (R-7.1.1.2, R-7.4.1.2).

A run reads pages (REST) or batches (database) and stores each through ``ingest_readings`` in one transaction
with the connector's new cursor, so a cursor never runs ahead of what was stored and a crash between two pages
loses nothing and stores nothing twice (a page read again is de-duplicated by the readings' identity)."""

from __future__ import annotations

import logging
import zlib
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.core.crypto import open_secret, seal_secret
from apps.core.db import database_unavailable
from apps.core.errors import CarbonParkError
from apps.core.services import record_change
from apps.ingestion import lastseen
from apps.ingestion.services import ingest_readings, touch_after_commit
from apps.pulls import errors, legacy, rest
from apps.pulls.models import Connector, PullRun

log = logging.getLogger("carbonpark.pulls")

# A REST connector reads another platform (interfaces.md §6's third parties, pulled rather than pushing): its
# readings are "third_party" like theirs. A database connector is the platform polling a legacy system of the
# park's own, as the device pollers do: "poller".
CHANNELS = {Connector.Kind.REST: "third_party", Connector.Kind.DATABASE: "poller"}
LOCK_SPACE = zlib.crc32(b"carbonpark.pulls") & 0x7FFFFFFF
FIELDS = ("park", "name", "kind", "enabled", "interval_minutes", "settings", "mapping")


def check_config(kind: str, cfg: dict, mapping: dict) -> dict:
    """The connector's settings completed with their defaults, or E7501/E7502 saying what is wrong."""
    if kind == Connector.Kind.REST:
        return rest.check_settings(cfg, mapping, allow_http=settings.PULLS_ALLOW_PLAIN_HTTP)
    if kind == Connector.Kind.DATABASE:
        return legacy.check_settings(cfg, mapping)
    raise CarbonParkError(errors.E7501, detail="kind is rest or database")


def _snapshot(c: Connector) -> dict:
    return {"park": c.park.code, "name": c.name, "kind": c.kind, "enabled": c.enabled,
            "interval_minutes": c.interval_minutes, "settings": c.settings, "mapping": c.mapping,
            "secret": "set" if c.secret_sealed else "none"}


@transaction.atomic
def save_connector(*, actor, connector: Connector | None = None, secret: str | None = None, **fields) -> Connector:
    """Create or change a pull connector (R-7.1.1.2), audited. ``secret`` (a bearer token, API key or database
    password) is sealed under the master key (R-7.4.4.1) and never stored or audited in plain text; None keeps
    the one saved, "" removes it. A changed source (URL, table, mapping) keeps the cursor: reset it with
    ``reset_cursor``."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise TypeError(f"unknown connector fields {sorted(unknown)}")
    obj = connector or Connector()
    before = _snapshot(Connector.objects.get(pk=obj.pk)) if obj.pk else None
    for name, value in fields.items():
        setattr(obj, name, value)
    check_config(obj.kind, obj.settings, obj.mapping)
    if obj.next_run_at is None:
        obj.next_run_at = timezone.now()
    obj.save()
    if secret is not None:
        obj.secret_sealed = seal_secret(secret.encode(), f"pulls.connector:{obj.pk}") if secret else None
        obj.save(update_fields=["secret_sealed"])
    after = _snapshot(obj)
    if secret:
        after["secret"] = "replaced" if before and before["secret"] == "set" else "set"
    record_change(actor=actor, action="pulls.connector.update" if before else "pulls.connector.create", obj=obj,
                  before=before, after=after, park_code=obj.park.code)
    return obj


@transaction.atomic
def reset_cursor(*, actor, connector: Connector, reason: str = "") -> None:
    """The next incremental pull starts from the beginning again (repeats are de-duplicated), audited."""
    before = connector.cursor
    Connector.objects.filter(pk=connector.pk).update(cursor=None)
    connector.cursor = None
    record_change(actor=actor, action="pulls.connector.reset_cursor", obj=connector, before={"cursor": before},
                  after={"cursor": None}, reason=reason, park_code=connector.park.code)


def _secret(connector: Connector) -> str:
    if not connector.secret_sealed:
        return ""
    try:
        return open_secret(connector.secret_sealed, f"pulls.connector:{connector.pk}").decode()
    except Exception:  # noqa: BLE001 - InvalidTag, a damaged value: the administrator enters it again
        raise CarbonParkError(errors.E7508) from None


def _try_lock(pk: int) -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_SPACE, pk])
        return cur.fetchone()[0]


def _unlock(pk: int) -> None:
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_SPACE, pk])


def _chunks(connector: Connector, cfg: dict, mode: str, window):
    """(records, cursor after, items read) of each page or batch, and a closer."""
    if connector.kind == Connector.Kind.REST:
        puller = rest.RestPuller(cfg, connector.mapping, _secret(connector))
        pages = ((p.records, p.cursor, p.items) for p in puller.pages(connector.cursor, mode=mode, window=window))
        return pages, puller.close
    puller = legacy.DatabasePuller(cfg, connector.mapping, _secret(connector))
    if mode == "full":
        # a window of a table: from its start (or the watermark at the window's start) through the whole table;
        # the saved watermark is left where it was
        start = window[0] if window else None
        cursor = ({"watermark": (start - timedelta(microseconds=1)).isoformat()}  # the window's start included
                  if start and cfg["watermark_kind"] == "timestamp" else None)
        batches = ((b.records, None, len(b.records)) for b in puller.batches(cursor))
    else:
        batches = ((b.records, b.cursor, len(b.records)) for b in puller.batches(connector.cursor))
    return batches, puller.close


def run_connector(connector_pk: int, *, mode: str = "incremental", window: tuple | None = None,
                  now: datetime | None = None) -> PullRun | None:
    """Run one connector now (R-7.1.1.2 incremental and full pulls, R-7.4.1.2 legacy databases): each page or
    batch stored through ``ingest_readings`` (this connector's park only) in one transaction with its new
    cursor; the run logged. None when the connector is running elsewhere (an advisory lock per connector)."""
    if mode not in ("incremental", "full"):
        raise ValueError("mode is incremental or full")
    connector = Connector.objects.select_related("park").get(pk=connector_pk)
    if not _try_lock(connector.pk):
        log.info("%s: %s", connector, errors.E7510.message("en"))
        return None
    try:
        return _run_locked(connector, mode, window, now or timezone.now())
    finally:
        _unlock(connector.pk)


def _run_locked(connector: Connector, mode: str, window, now: datetime) -> PullRun:
    connector.refresh_from_db()
    run = PullRun.objects.create(connector=connector, mode=mode, cursor_before=connector.cursor,
                                 window_from=window[0] if window else None, window_to=window[1] if window else None)
    channel = CHANNELS[connector.kind]
    closer = None
    try:
        cfg = check_config(connector.kind, connector.settings, connector.mapping)
        chunks, closer = _chunks(connector, cfg, mode, window)
        for records, cursor, items in chunks:
            with lastseen.collected() as marks, transaction.atomic():
                result = ingest_readings(records, channel=channel, actor=connector.actor_label,
                                         parks=[connector.park_id])
                if cursor is not None:
                    Connector.objects.filter(pk=connector.pk).update(cursor=cursor)
                    connector.cursor = cursor
                run.pages += 1
                run.pulled += items
                run.accepted += result.accepted
                run.duplicates += result.duplicates
                run.rejected += len(result.rejected)
                run.cursor_after = connector.cursor
                run.save(update_fields=["pages", "pulled", "accepted", "duplicates", "rejected", "cursor_after"])
            touch_after_commit(marks)
        run.state = PullRun.State.DONE
    except CarbonParkError as exc:
        run.state, run.error_code, run.error_params = PullRun.State.FAILED, exc.error.code, _json_params(exc.params)
        log.warning("pull %s (%s) stopped: %s", connector.pk, connector.name, exc)
    except Exception as exc:
        if database_unavailable(exc):
            raise
        log.exception("pull %s (%s) failed", connector.pk, connector.name)
        run.state, run.error_code = PullRun.State.FAILED, "E1017"
        run.error_params = {}
    finally:
        if closer is not None:
            closer()
    run.finished_at = timezone.now()
    run.cursor_after = connector.cursor
    run.save(update_fields=["state", "error_code", "error_params", "finished_at", "cursor_after"])
    Connector.objects.filter(pk=connector.pk).update(
        last_run_at=run.finished_at, last_error_code=run.error_code,
        next_run_at=now + timedelta(minutes=connector.interval_minutes))
    return run


def _json_params(params: dict) -> dict:
    return {k: v if isinstance(v, str | int | float | bool) or v is None else str(v) for k, v in params.items()}


def due_connectors(now: datetime | None = None) -> list[int]:
    """Ids of the enabled connectors whose next run is due (the beat task's list)."""
    now = now or timezone.now()
    return list(Connector.objects.filter(enabled=True, next_run_at__lte=now).order_by("next_run_at")
                .values_list("pk", flat=True))
