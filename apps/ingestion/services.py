"""THE ingestion pipeline. Every channel (HTTP, MQTT, files, forms, pollers, third parties) adapts its
input to reading records and calls ingest_readings; nothing else writes readings."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from apps.core import errors as core_errors
from apps.core.errors import CarbonParkError
from apps.core.services import actor_fields
from apps.core.text import pg_safe
from apps.ingestion import errors, lastseen, metrics, store
from apps.ingestion.config import IngestConfig, cached_config, config_at, current_config
from apps.ingestion.models import Flag
from apps.ingestion.normalize import Problem, Undecodable, normalize, short_repr
from apps.quality.services import AlarmRaise, raise_alarms
from apps.sources.services.state import touch

log = logging.getLogger(__name__)


@dataclass
class IngestResult:
    """What happened to a batch: the answer of interfaces.md §3, in data form."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict] = field(default_factory=list)
    flagged: int = 0
    warned: int = 0
    batch_id: int | None = None
    replayed: bool = False

    @property
    def http_status(self) -> int:
        return 400 if self.rejected else 200

    def to_json(self) -> dict:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected,
                "flagged": self.flagged, "warned": self.warned, "batch": self.batch_id}

    @classmethod
    def from_json(cls, data: dict, replayed: bool = True) -> IngestResult:
        return cls(data["accepted"], data["duplicates"], data["rejected"], data.get("flagged", 0),
                   data.get("warned", 0), data.get("batch"), replayed)

    def response(self, lang: str = "zh-hans") -> dict:
        """The wire answer: {"accepted", "duplicates", "rejected": [{"index", "code", "message", "field"}]}."""
        key = "message_en" if lang.startswith("en") else "message_zh"
        rejected = []
        for r in self.rejected:
            item = {"index": r["index"], "code": r["code"], "message": r[key]}
            if r.get("field"):
                item["field"] = r["field"]
            rejected.append(item)
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": rejected}


def request_fingerprint(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _raw_text(record) -> str:
    if type(record) is Undecodable:
        return record.raw
    try:
        return json.dumps(record, ensure_ascii=False, default=str)[:20000]
    except (TypeError, ValueError, RecursionError):
        return short_repr(record, 20000)


def _idempotency_scope(actor_label: str, channel: str) -> str:
    return f"{channel}:{actor_label}"[:80]


@dataclass(slots=True)
class Prepared:
    """A batch normalized and checked against one compiled configuration, not yet stored: the first half of
    ``ingest_readings`` (pure, no database), which a channel may run ahead of time in another thread."""

    records: list
    cfg: IngestConfig
    now: datetime
    allowed: frozenset | None
    default_backfill: bool
    sealed: frozenset
    refused: tuple
    rows: list
    rejected: list
    notes: list
    raws: list
    raw_bytes: list
    batch_park: int | None

    def again(self, cfg: IngestConfig) -> Prepared:
        """The same records checked against another configuration (it changed after they were prepared)."""
        return prepare_readings(self.records, cfg, parks=self.allowed, now=self.now,
                                default_backfill=self.default_backfill, sealed=self.sealed, refused=self.refused)


def prepare_readings(readings, cfg: IngestConfig, *, parks=None, now: datetime | None = None,
                     default_backfill: bool = False, sealed: frozenset = frozenset(), refused=()) -> Prepared:
    """Normalize and check a batch of reading records against ``cfg`` without touching the database (R-9.2.1,
    R-9.2.3): formats, references, the park's rights, units, the rule library. ``ingest_readings(prepared=...)``
    stores the result, and checks the records again if the configuration has changed meanwhile; a batch file
    prepares its next batch while this one is stored (apps/batch/loading.py). Arguments as ``ingest_readings``."""
    now = now or timezone.now()
    allowed = None if parks is None else frozenset(parks)
    records = readings if isinstance(readings, list) else list(readings)
    refused = tuple(refused)
    rows, rejected, notes = normalize(records, cfg, allowed_parks=allowed, now=now,
                                      default_backfill=default_backfill, sealed=sealed)
    raws = [_raw_text(records[p.index]) for p in rejected]
    raw_bytes = [getattr(records[p.index], "raw_bytes", None) for p in rejected]
    for i, r in enumerate(refused):
        src = cfg.sources.get(r.source_ref)
        rejected.append(Problem(len(records) + i, r.error, "", r.params, r.source_ref, r.data_code,
                                src.park_id if src else None, src.pk if src else None))
        raws.append(r.raw)
        raw_bytes.append(r.raw_bytes)
    batch_park = next(iter(allowed)) if allowed is not None and len(allowed) == 1 else None
    if batch_park is None and rows:
        batch_park = rows[0].park_id
    return Prepared(records, cfg, now, allowed, default_backfill, sealed, refused, rows, rejected, notes, raws,
                    raw_bytes, batch_park)


def ingest_readings(readings=None, *, channel: str, actor, parks=None, idempotency_key: str | None = None,
                    request_hash: str | None = None, default_backfill: bool = False,
                    now: datetime | None = None, refused=(), sealed: frozenset = frozenset(),
                    prepared: Prepared | None = None, patched: bool = False) -> IngestResult:
    """Normalize, validate, de-duplicate and store a batch of reading records (R-5.2.3.2 c, R-5.2.3.5,
    R-8.4.2.4, R-9.2.1, R-9.2.3, R-9.3.1).

    ``readings``: records shaped as interfaces.md §1 (dicts as decoded from JSON, TLV, files …).
    ``channel``: where they came from ("http", "mqtt", "file", "form", "poller", "third_party", "demo").
    ``actor``: the user, token principal or process label responsible.
    ``parks``: the park ids the actor may write to; None for a trusted process (any park).
    ``idempotency_key``: with ``request_hash``, a repeat of the same request returns the first answer
    without storing anything again; the same key with another body is refused (E1005).
    ``refused``: what the channel could not turn into records (channels.payloads.Refusal: a bad TLV
    checksum, an undecryptable envelope …), logged and alarmed here like any rejected record, with
    indexes after the records'. ``sealed``: indexes of records that arrived encrypted.
    ``prepared``: the batch as ``prepare_readings`` left it, in place of ``readings`` and the arguments that
    ``prepare_readings`` takes (those given here are then ignored).
    ``patched``: the points of a gap's filling (R-9.3.2.1, apps/quality/filling.py), stored flagged "patched".
    Trusted processes only (``parks`` None): no record, channel or sender can ask for the flag otherwise.

    A stored reading flagged "patched" gives way to a real reading arriving later for its time: the real value
    becomes the effective one, a revision beside the fill (apps/quality/filling.py, ``supersede_fills``), and
    the batch counts it as accepted.

    Valid records are stored even when others in the batch are rejected; every rejected record is
    kept with its raw content and code; repeats of stored readings are logged, never stored twice;
    validation failures raise an alarm in the same transaction, so the admin shows it at once.
    """
    started = time.perf_counter()
    if patched and (parks is not None or prepared is not None):
        raise ValueError("only a trusted process stores patched points (parks=None, no prepared batch)")
    actor_label = actor_fields(actor)["actor_label"]
    if prepared is None:
        # The configuration compiled last in this process; its version is checked in the transaction below, in
        # the statement that opens the batch (no query of its own), and the records checked again if it changed.
        prepared = prepare_readings(readings, cached_config() or current_config(), parks=parks, now=now,
                                    default_backfill=default_backfill, sealed=sealed, refused=refused)
    records, refused, now, cfg = prepared.records, prepared.refused, prepared.now, prepared.cfg

    with transaction.atomic():
        cur = store.raw_cursor()
        key_id = None
        if idempotency_key:
            key_id, previous = store.claim_idempotency_key(
                cur, _idempotency_scope(actor_label, channel), idempotency_key, request_hash or "", now)
            if key_id is None:
                status, response, first_hash = previous
                if isinstance(response, str):  # Django leaves jsonb undecoded on its connections
                    response = json.loads(response)
                if request_hash and first_hash != request_hash:
                    raise CarbonParkError(core_errors.E1005, field="Idempotency-Key")
                return IngestResult.from_json(response)
        batch_id, version = store.open_batch(cur)
        if version != cfg.version or version == 0:  # changed meanwhile (0: never bumped, nothing is cached)
            prepared = prepared.again(config_at(version))
        rows, rejected, notes, raws = prepared.rows, prepared.rejected, prepared.notes, prepared.raws
        raw_bytes, batch_park = prepared.raw_bytes, prepared.batch_park
        if patched:
            for r in rows:
                r.flags |= Flag.PATCHED
        ts_of = {r.index: r.ts for r in rows}
        note_events = []
        in_batch = flagged = warned = 0
        for p in notes:
            zh, en = p.messages()
            if p.error.code == "E4002":
                in_batch += 1
                raw = records[p.index]
                note_events.append((p.index, "duplicate", "E4002", p.source_ref, p.data_code,
                                    ts_of.get(p.index, now), repr(raw.get("value")), zh, en, None))
            else:
                kind = "flagged" if p.field == "flag" else "warned"
                flagged += kind == "flagged"
                warned += kind == "warned"
                note_events.append((p.index, kind, p.error.code, p.source_ref, p.data_code, ts_of.get(p.index, now),
                                    repr(p.params.get("value", "")), zh, en, p.rule_pk))
        batch_row = {"now": now, "channel": channel, "actor_label": actor_label, "park_id": batch_park,
                     "total": len(records) + len(refused), "rejected": len(rejected), "flagged": flagged,
                     "warned": warned}
        if len(rows) == 1:  # one statement for the reading and the batch's row (the common single-reading push)
            stored = store.insert_one_reading(cur, rows[0], batch_id=batch_id, duplicates=in_batch, **batch_row)
            repeated = set() if stored else {rows[0].index}
            fills = set(repeated)
        else:
            fills = set()  # repeats of a stored fill: the only ones a real reading may replace
            repeated = store.insert_readings(cur, rows, batch_id=batch_id, channel=channel, now=now, patched=fills)
        superseded = set()
        if fills and not patched:  # a real reading for the time of a fill wins over it (R-9.3.2.1)
            superseded = _supersede_fills(cur, [r for r in rows if r.index in fills], actor_label, now)
            repeated -= superseded
        events = []
        for r in rows:
            if r.index in repeated:
                zh, en = errors.E4001.message("zh-hans"), errors.E4001.message("en")
                events.append((r.index, "duplicate", "E4001", r.source_id, r.code, r.ts,
                               repr(r.value if r.text is None else r.text), zh, en, None))
        events.extend(note_events)
        store.insert_events(cur, events, batch_id=batch_id)
        store.insert_rejections(cur, rejected, raws, batch_id=batch_id, now=now, raw_bytes=raw_bytes)
        duplicates = len(repeated) + in_batch
        result = IngestResult(
            accepted=len(rows) - len(repeated), duplicates=duplicates, flagged=flagged, warned=warned,
            batch_id=batch_id, rejected=[_rejection_json(p) for p in rejected])
        if len(rows) != 1:
            store.insert_batch(cur, batch_id, accepted=result.accepted, duplicates=duplicates, **batch_row)
        _alarm_on(rejected, notes, batch_park, channel)
        if key_id is not None:
            store.save_idempotent_response(cur, key_id, result.http_status, result.to_json(), batch_id)
    if superseded:
        _touch_after_commit({r.source_pk for r in rows if r.index in superseded}, now)
    if rows and len(repeated) < len(rows):
        # After the commit, not inside it: last-seen rows are shared by concurrent batches.
        _touch_after_commit({r.source_pk for r in rows if r.index not in repeated}, now)
    metrics.observe_batch(channel, result, started)
    return result


def _supersede_fills(cur, repeats, actor_label: str, now: datetime) -> set[int]:
    """The batch indexes of ``repeats`` that replaced a fill: rows whose identity was stored before as a patched
    point (a batch learns that from the query that finds its repeats: nothing more for ordinary duplicates), or the
    single reading of a one-reading request found stored (one query). The fills not yet replaced are taken."""
    numeric = [r for r in repeats if r.value is not None]
    if not numeric:
        return set()
    cur.execute(store.PATCHED_OF, {"s": [r.source_pk for r in numeric], "d": [r.item_pk for r in numeric],
                                   "t": [r.ts for r in numeric]})
    hit = {(s, d, t) for s, d, t in cur.fetchall()}
    if not hit:
        return set()
    from apps.quality.filling import supersede_fills

    real = [r for r in numeric if (r.source_pk, r.item_pk, r.ts) in hit]
    supersede_fills(real, actor_label=actor_label, now=now)
    return {r.index for r in real}


def _touch_after_commit(source_pks: set[int], now: datetime) -> None:
    """Last seen for the sources of a committed batch. The readings are stored and about to be
    acknowledged: a failure here (a lock, a trigger, the database dropping right after the commit) must
    never turn that into an error the sender would retry. It is logged; the sources' next batch sets
    last seen again. Inside a savepoint, so a caller's own transaction is not left aborted. A web worker
    writes the marks of its batches together, every half second (apps/ingestion/lastseen.py); a caller that
    ingests many batches in one transaction (a batch file) collects them and writes them once after its commit
    (``lastseen.collected``, ``touch_after_commit``)."""
    held = lastseen.collecting()
    if held is not None:
        lastseen.hold(held, source_pks, now)
        return
    later = lastseen.deferred()
    if later is not None:
        later.add(source_pks, now)
        return
    touch_after_commit(dict.fromkeys(source_pks, now))


def touch_after_commit(marks: dict[int, datetime]) -> None:
    """Write last-seen marks ({source pk: time}) after the transaction that stored their readings committed;
    a failure is logged, never raised (see ``_touch_after_commit``)."""
    if not marks:
        return
    try:
        with transaction.atomic():
            touch(marks)
    except Exception:  # noqa: BLE001 - post-commit bookkeeping, never the batch's outcome
        log.warning("last-seen update after a committed batch failed for %d source(s); the next batch of "
                    "these sources sets it again", len(marks), exc_info=True)


def _rejection_json(p: Problem) -> dict:
    zh, en = p.messages()
    out = {"index": p.index, "code": p.error.code, "message_zh": zh, "message_en": en}
    if p.field:
        out["field"] = p.field
    return out


def _alarm_on(rejected: list[Problem], notes: list[Problem], batch_park, channel: str) -> None:
    """One alarm per (park, source, code) and batch: counted, not repeated (R-5.2.3.5, R-5.3.3)."""
    groups = Counter((p.park_id or batch_park, p.source_pk, p.error.code) for p in rejected)
    groups.update((p.park_id or batch_park, p.source_pk, p.error.code) for p in notes if p.field == "flag")
    first = {}
    for p in [*rejected, *notes]:
        first.setdefault((p.park_id or batch_park, p.source_pk, p.error.code), p)
    alarms = []
    for (park_id, source_pk, code), count in groups.items():
        p = first[(park_id, source_pk, code)]
        zh, en = p.messages()
        where = pg_safe(p.source_ref) or "?"
        alarms.append(AlarmRaise(park_id, source_pk, "validation", code, f"[{channel}] {where}: {zh}",
                                 f"[{channel}] {where}: {en}", count, "reject" if p in rejected else "flag"))
    raise_alarms(alarms)  # one statement for the batch, in its transaction


def purge_idempotency_keys(now: datetime | None = None) -> int:
    """Forget Idempotency-Keys older than IDEMPOTENCY_TTL_HOURS; the readings themselves stay unique
    by identity, so a very late retry is still stored once (as duplicates)."""
    from datetime import timedelta

    from django.conf import settings

    from apps.ingestion.models import IdempotencyKey

    cutoff = (now or timezone.now()) - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
