"""Loading one batch file into the pipeline (interfaces.md §7; R-7.2.1, R-8.2.1.2, R-8.4.1, R-8.4.2.4).

``load_file`` reads a file (CSV, XML, XLSX; gzip, zip; sealed or not) through the pure parsers of
``apps.batch.parsers`` and hands its records to ``ingest_readings`` (channel ``file``) in batches, all of them
inside ONE transaction: every valid record of the file is stored and the rejected ones listed in its report,
or, when the file is malformed as a whole (found at any point, the records count at the very end included),
nothing is. A process killed mid-file leaves nothing either: its transaction dies with its connection, and the
load's log row, left "running", is marked interrupted (E9126) by ``recover_interrupted_loads``. Loading the same
file again stores nothing twice: readings are unique by identity, repeats are counted as duplicates.

Every load leaves a log row (``FileLoad``: who, file, MD5, counts, duration), an audit record, and a rejection
report (CSV and XLSX: row, column, code, message) under ``BATCH_REPORT_ROOT``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.access import Action, check
from apps.batch import errors
from apps.batch.models import FileLoad
from apps.batch.parsers import BatchFile, FileError, Limits, ParsedRecord, RowError
from apps.batch.prefetch import Prefetch
from apps.batch.reports import ReportWriter
from apps.core.errors import REGISTRY
from apps.core.services import actor_fields, record_change
from apps.ingestion import lastseen
from apps.ingestion.channels.payloads import Refusal
from apps.ingestion.config import cached_config, current_config
from apps.ingestion.services import Prepared, ingest_readings, prepare_readings, touch_after_commit

log = logging.getLogger(__name__)

CHANNEL = "file"
KEEP_REJECTIONS = 1000  # kept in the LoadReport itself; all of them go to the report files
# Rows per ingest_readings call. A file is one transaction whatever the batch, so a batch is only a unit of work
# and of progress: larger ones spend fewer statements per row (bench/batch_load.py) at a few MB of records each.
BATCH_SIZE = 20_000
PREFETCH_DEPTH = 1  # batches parsed ahead of the one being stored
NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


@dataclass(frozen=True)
class FileProblem:
    """Why a file was refused as a whole: its E91xx code and the message in both languages."""

    code: str
    message_zh: str
    message_en: str

    def message(self, lang: str = "zh-hans") -> str:
        return self.message_en if lang.startswith("en") else self.message_zh


@dataclass(frozen=True)
class Rejection:
    """One rejected row: ``row`` as the file counts it (CSV line, sheet row, XML line), ``column`` the record
    field concerned ("" for the row as a whole)."""

    row: int | None
    column: str
    code: str
    message_zh: str
    message_en: str


@dataclass
class LoadReport:
    """What happened to one file. ``rows``: data rows read; ``accepted`` + ``duplicates`` + ``rejected`` =
    ``rows`` when the file loaded; with a ``file_error`` nothing was stored (``accepted`` = ``duplicates`` = 0).
    ``rejections``: the first KEEP_REJECTIONS rejected rows; every one is in ``report_csv`` / ``report_xlsx``.
    ``bytes_read``/``size``: how far the parser has gone, for progress."""

    filename: str
    park_code: str
    load_id: int | None = None
    md5: str = ""
    size: int = 0
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    flagged: int = 0
    file_error: FileProblem | None = None
    rejections: list[Rejection] = field(default_factory=list)
    report_csv: str | None = None
    report_xlsx: str | None = None
    duration: float = 0.0
    done: bool = False

    @property
    def ok(self) -> bool:
        return self.file_error is None

    def to_json(self) -> dict:
        return {"load": self.load_id, "file": self.filename, "park": self.park_code, "md5": self.md5,
                "size": self.size, "rows": self.rows, "accepted": self.accepted, "duplicates": self.duplicates,
                "rejected": self.rejected, "flagged": self.flagged, "duration": round(self.duration, 3),
                "done": self.done,
                "fileError": None if self.file_error is None else {
                    "code": self.file_error.code, "message_zh": self.file_error.message_zh,
                    "message_en": self.file_error.message_en}}


def file_md5(path: str | os.PathLike) -> tuple[str, int]:
    digest, size = hashlib.md5(usedforsecurity=False), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _limits() -> Limits:
    return Limits(max_bytes=settings.BATCH_MAX_BYTES, max_ratio=settings.BATCH_MAX_RATIO)


def file_key_lookup(park) -> Callable[[str], bytes | None]:
    """key id → the 32 bytes of one of ``park``'s file keys that may decrypt now (active, or retired within its
    grace period), else None (another park's key, a source's key, unknown)."""
    from apps.sources.models import SourceKey
    from apps.sources.services.keys import key_material

    def key_for(key_id: str) -> bytes | None:
        key = SourceKey.objects.filter(key_id=key_id, park=park, source__isnull=True).first()
        if key is None or key.state == SourceKey.State.PENDING:
            return None
        if key.state == SourceKey.State.RETIRED and (key.decrypt_until is None or key.decrypt_until <= timezone.now()):
            return None
        return key_material(key)

    return key_for


def _typed(records: list[dict], cfg) -> None:
    """Text values read as numbers for the catalog's number items (a CSV cell is text), numbers read as text for
    the others (an XLSX cell may be a number). Anything else is left for ingest_readings to judge (E2002, E2008)."""
    sources = cfg.sources
    for rec in records:
        v = rec.get("value")
        if v is None:
            continue
        src = sources.get(rec.get("sourceId"))
        item = None
        if src is not None:
            code = rec.get("dataCode")
            item = src.only_item if code is None else src.items.get(code)
        number = item is None or item.data_type == "number"
        t = type(v)
        if t is str:
            if number and NUMBER_RE.fullmatch(v):
                rec["value"] = float(v)
        elif (t is int or t is float) and not number:
            rec["value"] = str(int(v)) if t is float and v.is_integer() else str(v)
        elif t is bool:
            rec["value"] = "true" if v else "false"


class _Batch:
    __slots__ = ("records", "rows", "refused", "refused_rows", "prepared")

    def __init__(self):
        self.records: list[dict] = []
        self.rows: list[int] = []
        self.refused: list[Refusal] = []
        self.refused_rows: list[RowError] = []
        self.prepared: Prepared | None = None

    def __len__(self):
        return len(self.records) + len(self.refused)


def _refusal(item: RowError) -> Refusal:
    params = dict(item.params)
    return Refusal(raw=item.raw or f"row {item.row}", error=REGISTRY[item.code], params=params)


def load_file(path, *, park, actor, filename: str, upload_id: str | None = None,
              progress: Callable[[LoadReport], None] | None = None, batch_size: int = BATCH_SIZE,
              origin: str = FileLoad.Origin.UPLOAD) -> LoadReport:
    """Load one batch file into ``park`` for ``actor`` (R-7.2.1, R-8.2.1.2, R-8.4.2.4; interfaces.md §7).

    ``path``: the file as received; ``filename``: its name under the §7 rule (the park in it must be ``park``);
    ``actor``: a user, an API token's principal, or a ``SystemPrincipal`` (the shared folder); it needs the
    right to enter or push data in ``park`` (E9127 otherwise). ``upload_id``: the associated data of a sealed
    file (``.enc``: CPE1 envelope, content type 0x03, the park's file key). ``progress``: called with the report
    so far after each batch of ``batch_size`` rows: it runs INSIDE the file's transaction, so it must report
    elsewhere (a cache, Redis), not on the default database connection. Never raises for a bad file: the
    report's ``file_error`` says why nothing was stored."""
    started = time.perf_counter()
    md5, size = file_md5(path)
    report = LoadReport(filename=filename, park_code=park.code, md5=md5, size=size)
    who = actor_fields(actor)
    load = FileLoad.objects.create(park=park, filename=filename[:255], upload_id=(upload_id or "")[:64],
                                   origin=origin, md5=md5, size=size, actor=who["actor"],
                                   actor_label=who["actor_label"])
    report.load_id = load.pk
    writer = ReportWriter(Path(settings.BATCH_REPORT_ROOT), f"{load.pk}-{_safe_stem(filename)}")
    try:
        if not (check(actor, Action.ENTER, park) or check(actor, Action.PUSH, park)):
            raise FileError("E9127", park=park.code)
        # The sources' last seen is written once, after the file's commit, at each source's latest batch
        # (ingest_readings would write it after every batch, inside the file's transaction).
        with lastseen.collected() as seen, transaction.atomic():
            FileLoad.objects.select_for_update().filter(pk=load.pk).values_list("pk").get()  # held: see recover
            _load(path, park=park, actor=actor, filename=filename, upload_id=upload_id or "", report=report,
                  writer=writer, progress=progress, batch_size=batch_size)
            report.duration = time.perf_counter() - started
            _finish(load, report, writer, actor)
        touch_after_commit(seen)
    except FileError as exc:
        _refuse(load, report, writer, actor, FileProblem(exc.code, exc.message_zh, exc.message_en), started)
    except Exception as exc:  # noqa: BLE001 - a file must never leave a load half-told; the log has the trace
        log.exception("batch file %s (load %s) could not be processed", filename, load.pk)
        zh, en = errors.E9125.messages(name=filename[:120], detail=type(exc).__name__).values()
        _refuse(load, report, writer, actor, FileProblem("E9125", zh, en), started)
    finally:
        writer.discard_spool()
    report.done = True
    if progress is not None:
        progress(report)
    return report


def refuse_file(path, *, park, actor, filename: str, error: FileError, upload_id: str | None = None,
                origin: str = FileLoad.Origin.UPLOAD) -> LoadReport:
    """Log a file refused before loading (a check its channel made, e.g. the shared folder's layout, E9128): the
    same log row, audit record and one-line report as a file load_file refuses (R-8.4.1)."""
    started = time.perf_counter()
    md5, size = file_md5(path)
    report = LoadReport(filename=filename, park_code=park.code, md5=md5, size=size)
    who = actor_fields(actor)
    load = FileLoad.objects.create(park=park, filename=filename[:255], upload_id=(upload_id or "")[:64],
                                   origin=origin, md5=md5, size=size, actor=who["actor"],
                                   actor_label=who["actor_label"])
    report.load_id = load.pk
    writer = ReportWriter(Path(settings.BATCH_REPORT_ROOT), f"{load.pk}-{_safe_stem(filename)}")
    _refuse(load, report, writer, actor, FileProblem(error.code, error.message_zh, error.message_en), started)
    writer.discard_spool()
    report.done = True
    return report


def _safe_stem(filename: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", filename)[:120]


def _batches(items, batch_size: int, cfg, park_pk: int, sealed: bool):
    """The file's items grouped in batches of ``batch_size`` rows, the records' values typed (``_typed``), then
    normalized and checked (``prepare_readings``). Runs in the prefetch thread: pure, no database."""

    def ready(batch: _Batch) -> _Batch:
        current = cached_config() or cfg  # as ingest_readings last compiled it, should it have changed mid-file
        _typed(batch.records, current)
        batch.prepared = prepare_readings(
            batch.records, current, parks=[park_pk], now=timezone.now(), refused=batch.refused,
            sealed=frozenset(range(len(batch.records))) if sealed else frozenset())
        return batch

    batch = _Batch()
    records, rows, refused, refused_rows = batch.records, batch.rows, batch.refused, batch.refused_rows
    n = 0
    for item in items:
        if type(item) is ParsedRecord:
            records.append(item.record)
            rows.append(item.row)
        else:
            refused.append(_refusal(item))
            refused_rows.append(item)
        n += 1
        if n >= batch_size:
            yield ready(batch)
            batch = _Batch()
            records, rows, refused, refused_rows = batch.records, batch.rows, batch.refused, batch.refused_rows
            n = 0
    if n:
        yield ready(batch)
    # items() is exhausted: the records count was checked (E9107 raised, here or above, before the last batch)


def _load(path, *, park, actor, filename, upload_id, report: LoadReport, writer, progress, batch_size) -> None:
    cfg = cached_config() or current_config()  # ingest_readings checks the version of every batch
    with BatchFile(path, filename, park_code=park.code, limits=_limits(), key_for=file_key_lookup(park),
                   upload_id=upload_id) as batch_file:
        sealed = batch_file.sealed
        # The next batch is parsed and checked in a thread while this one is stored (apps/batch/prefetch.py); a
        # FileError raised by the parser arrives here in its place in the file, inside the file's transaction.
        with Prefetch(_batches(batch_file.items(), batch_size, cfg, park.pk, sealed),
                      depth=PREFETCH_DEPTH) as batches:
            for batch in batches:
                _ingest(batch, actor, report, writer)
                if progress is not None:
                    progress(report)


def _ingest(batch: _Batch, actor, report: LoadReport, writer) -> None:
    n = len(batch.records)
    # Checked in the prefetch thread against the configuration of the time; ingest_readings checks it again if
    # the configuration changed since.
    result = ingest_readings(channel=CHANNEL, actor=actor, prepared=batch.prepared)
    report.rows += len(batch)
    report.accepted += result.accepted
    report.duplicates += result.duplicates
    report.flagged += result.flagged
    report.rejected += len(result.rejected)
    for r in result.rejected:
        i = r["index"]
        if i < n:
            rej = Rejection(batch.rows[i], r.get("field", ""), r["code"], r["message_zh"], r["message_en"])
        else:
            e = batch.refused_rows[i - n]
            rej = Rejection(e.row, e.column, e.code, e.message_zh, e.message_en)
        writer.add(rej)
        if len(report.rejections) < KEEP_REJECTIONS:
            report.rejections.append(rej)


def _finish(load: FileLoad, report: LoadReport, writer, actor) -> None:
    """Inside the file's transaction: the log row's counts, the reports, the audit record."""
    report.report_csv, report.report_xlsx = writer.write()
    FileLoad.objects.filter(pk=load.pk).update(
        state=FileLoad.State.DONE, rows=report.rows, accepted=report.accepted, duplicates=report.duplicates,
        rejected=report.rejected, report_csv=report.report_csv or "", report_xlsx=report.report_xlsx or "",
        finished_at=timezone.now(), duration_ms=int(report.duration * 1000))
    record_change(actor=actor, action="batch.load", object_type="batch.fileload", object_id=str(load.pk),
                  after=_audit_after(report), park_code=report.park_code)


def _refuse(load: FileLoad, report: LoadReport, writer, actor, problem: FileProblem, started: float) -> None:
    """After the file's transaction rolled back: nothing stored, the log row and audit say why."""
    report.file_error = problem
    report.accepted = report.duplicates = report.flagged = 0
    report.rejected = 0
    report.rejections = []
    report.duration = time.perf_counter() - started
    writer.reset()
    writer.add(Rejection(None, "", problem.code, problem.message_zh, problem.message_en))
    with transaction.atomic():
        report.report_csv, report.report_xlsx = writer.write()
        FileLoad.objects.filter(pk=load.pk).update(
            state=FileLoad.State.FAILED, rows=report.rows, accepted=0, duplicates=0, rejected=0,
            error_code=problem.code, error_zh=problem.message_zh, error_en=problem.message_en,
            report_csv=report.report_csv or "", report_xlsx=report.report_xlsx or "", finished_at=timezone.now(),
            duration_ms=int(report.duration * 1000))
        record_change(actor=actor, action="batch.refuse", object_type="batch.fileload", object_id=str(load.pk),
                      after=_audit_after(report), reason=problem.code, park_code=report.park_code)


def _audit_after(report: LoadReport) -> dict:
    after = {"file": report.filename, "md5": report.md5, "size": report.size, "rows": report.rows,
             "accepted": report.accepted, "duplicates": report.duplicates, "rejected": report.rejected,
             "duration_ms": int(report.duration * 1000)}
    if report.file_error is not None:
        after["error"] = report.file_error.code
    return after


def recover_interrupted_loads(grace_seconds: int = 60) -> int:
    """Loads left "running" by a process that died mid-file (R-8.4.1): their transaction rolled back with their
    connection, so nothing of the file is stored; each is marked refused with E9126 and audited. A load still
    under way holds its row's lock for its whole transaction and is skipped (SKIP LOCKED); ``grace_seconds``
    spares a load that has just been logged and not yet taken its lock."""
    from datetime import timedelta

    cutoff = timezone.now() - timedelta(seconds=grace_seconds)
    count = 0
    with transaction.atomic():
        stale = list(FileLoad.objects.select_for_update(skip_locked=True).select_related("park")
                     .filter(state=FileLoad.State.RUNNING, started_at__lte=cutoff))
        for load in stale:
            zh, en = errors.E9126.messages().values()
            FileLoad.objects.filter(pk=load.pk).update(state=FileLoad.State.FAILED, error_code="E9126",
                                                       error_zh=zh, error_en=en, finished_at=timezone.now())
            record_change(actor="batch-recovery", action="batch.interrupted", object_type="batch.fileload",
                          object_id=str(load.pk), after={"file": load.filename, "md5": load.md5},
                          reason="E9126", park_code=load.park.code)
            count += 1
    return count
