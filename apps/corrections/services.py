"""Corrections of stored readings (R-9.3.2.2, R-9.3.2.3): request → approve | reject → apply.

Applying writes revisions beside the readings through ``revise_readings``, the one second named writer
(ARCHITECTURE.md rule 1): the value as received is never updated, and the database refuses every other
writer of revisions (migration corrections 0002). Every step is audited in the park's hash chain."""

from __future__ import annotations

import hashlib
import math
import re
import zoneinfo
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.files.base import File
from django.db import DataError, connection, transaction
from django.utils import timezone
from django.utils.text import get_valid_filename

from apps.accounts import access
from apps.accounts.access import Action
from apps.core.errors import CarbonParkError
from apps.core.services import actor_fields, record_change
from apps.corrections import errors
from apps.corrections.models import Correction, Evidence
from apps.ingestion.store import mark_rollups_dirty
from apps.sources.models import DataSource

MAX_MAGNITUDE = 1e15  # a new value or a factor beyond this is a typo, never a meter's reading
REASON_MAX = 2000
MAX_EVIDENCE_FILES = 10
LOCK_NAMESPACE = 0x436F  # advisory locks of revise_readings: (namespace, source id)

MAGIC = [(b"%PDF-", "application/pdf", ".pdf"), (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
         (b"\xff\xd8\xff", "image/jpeg", ".jpg")]
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|[\ud800-\udfff]")


def _user(actor):
    from django.contrib.auth.models import AbstractBaseUser

    return actor if isinstance(actor, AbstractBaseUser) and actor.pk else None


def _text(value, field: str, *, required: bool, limit: int = REASON_MAX) -> str:
    text = value if isinstance(value, str) else ""
    text = text.strip()
    if (required and not text) or (value is not None and not isinstance(value, str)) or CONTROL.search(text) \
            or len(text) > limit:
        raise CarbonParkError(errors.E8011, field=field, limit=limit)
    return text


def _number(value, field: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise CarbonParkError(errors.E8009, field=field, value=repr(value)[:40], limit=MAX_MAGNITUDE)
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise CarbonParkError(errors.E8009, field=field, value=repr(value)[:40], limit=MAX_MAGNITUDE) from None
    if not math.isfinite(number) or abs(number) > MAX_MAGNITUDE:
        raise CarbonParkError(errors.E8009, field=field, value=repr(value)[:40], limit=MAX_MAGNITUDE)
    return number


def _time(value, field: str, tz) -> datetime:
    from apps.ingestion.normalize import Refused, parse_timestamp

    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    try:
        return parse_timestamp(value, tz)
    except Refused as r:
        raise CarbonParkError(errors.E8004, field=field, detail=r.error.message(**r.params)) from None


# --- evidence ------------------------------------------------------------------------------------------


def sniff(head: bytes) -> tuple[str, str] | None:
    """(content type, extension) of a PDF, PNG or JPEG by its first bytes; None for anything else."""
    for magic, ctype, ext in MAGIC:
        if head.startswith(magic):
            return ctype, ext
    return None


def check_evidence(upload) -> tuple[str, str, str]:
    """Refuse an evidence file before anything is stored: too large (E8013) or not a PDF/PNG/JPEG by its
    content (E8012). Returns (content type, extension, sanitised original name) (R-6.4)."""
    name = get_valid_filename(str(getattr(upload, "name", "") or "evidence").replace("\x00", ""))[-150:] \
        or "evidence"
    name = name.lstrip(".") or "evidence"
    size = getattr(upload, "size", None) or 0
    if size > settings.EVIDENCE_MAX_BYTES:
        raise CarbonParkError(errors.E8013, field="evidence", name=name, size=size, limit=settings.EVIDENCE_MAX_BYTES)
    upload.seek(0)
    kind = sniff(upload.read(16))
    upload.seek(0)
    if kind is None:
        raise CarbonParkError(errors.E8012, field="evidence", name=name)
    return kind[0], kind[1], name


def hash_file(upload) -> str:
    """The SHA-256 of an uploaded file, read in chunks; the file is left at its start (shared with the forms'
    attachments, apps/entry)."""
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


def store_evidence(*, actor, park_id: int, upload, correction: Correction | None = None) -> Evidence:
    """Keep one evidence file under MEDIA_ROOT/evidence/ named by its SHA-256 (the sender's name is kept only
    as sanitised text), with its size and hash (R-6.4, R-9.3.2.2)."""
    ctype, ext, name = check_evidence(upload)
    sha = hash_file(upload)
    evidence = Evidence(park_id=park_id, correction=correction, original_name=name, content_type=ctype,
                        size=upload.size, sha256=sha, uploaded_by_label=actor_fields(actor)["actor_label"],
                        uploaded_at=timezone.now())
    evidence.file.save(f"{sha}{ext}", File(upload), save=False)
    evidence.save()
    return evidence


# --- request -----------------------------------------------------------------------------------------------


@dataclass
class RangeFacts:
    count: int
    max_abs: float | None


RANGE_FACTS = """
SELECT count(*), max(abs(corrections_effective_value(r.source_id, r.data_item_id, r.ts, r.value)))
FROM ingestion_reading r
WHERE r.source_id = %s AND r.data_item_id = %s AND r.ts BETWEEN %s AND %s AND r.value IS NOT NULL
"""


def range_facts(source_pk: int, item_pk: int, start: datetime, end: datetime) -> RangeFacts:
    with connection.cursor() as cur:
        cur.execute(RANGE_FACTS, [source_pk, item_pk, start, end])
        count, max_abs = cur.fetchone()
    return RangeFacts(count, max_abs)


def request_correction(*, actor, source_id, data_code=None, start, end, new_value=None, factor=None, reason,
                       evidence=()) -> Correction:
    """Ask for a correction of one reading (start = end) or a range of one source's readings of one numeric
    item: a new value, or a factor that multiplies each reading's effective value (a wrong CT ratio),
    with a reason and optional evidence files (R-9.3.2.2).

    The requester needs ``modify`` in the source's park: a data-entry clerk's scope is its own, and a
    request is its requester's own. Another park's source reads exactly like an unknown one (E8001)."""
    if not isinstance(source_id, str) or not source_id:
        raise CarbonParkError(errors.E8001, field="sourceId", source=str(source_id)[:64])
    source = access.restrict(DataSource.objects.select_related("park"), actor, Action.VIEW) \
        .filter(source_id=source_id[:100]).first()
    if source is None:
        raise CarbonParkError(errors.E8001, field="sourceId", source=source_id[:64])
    access.require(actor, Action.MODIFY, source.park_id, owner=_user(actor) or actor)
    items = list(source.data_items.all())
    if data_code in (None, "") and len(items) == 1:
        item = items[0]
    else:
        item = next((i for i in items if isinstance(data_code, str) and i.code == data_code), None)
        if item is None:
            raise CarbonParkError(errors.E8002, field="dataCode", code=str(data_code)[:40], source=source.source_id)
    if item.data_type != "number":
        raise CarbonParkError(errors.E8003, field="dataCode", code=item.code)
    tz = zoneinfo.ZoneInfo(source.park.time_zone)
    start, end = _time(start, "start", tz), _time(end, "end", tz)
    if start > end:
        raise CarbonParkError(errors.E8005, field="start")
    new_value, factor = _number(new_value, "newValue"), _number(factor, "factor")
    if (new_value is None) == (factor is None):
        raise CarbonParkError(errors.E8008, field="newValue")
    reason = _text(reason, "reason", required=True)
    evidence = list(evidence or ())
    if len(evidence) > MAX_EVIDENCE_FILES:
        raise CarbonParkError(errors.E8017, field="evidence", limit=MAX_EVIDENCE_FILES)
    for upload in evidence:
        check_evidence(upload)  # refuse before anything is written
    facts = range_facts(source.pk, item.pk, start, end)
    if facts.count == 0:
        raise CarbonParkError(errors.E8006, field="start")
    if facts.count > settings.CORRECTIONS_MAX_READINGS:
        raise CarbonParkError(errors.E8007, field="end", count=facts.count, limit=settings.CORRECTIONS_MAX_READINGS)
    if factor is not None and facts.max_abs is not None and not math.isfinite(facts.max_abs * abs(factor)):
        raise CarbonParkError(errors.E8010, field="factor")
    who = actor_fields(actor)
    with transaction.atomic():
        correction = Correction.objects.create(
            park_id=source.park_id, source=source, data_item=item, start=start, end=end,
            kind=Correction.Kind.FACTOR if factor is not None else Correction.Kind.NEW_VALUE,
            new_value=new_value, factor=factor, reason=reason, readings_in_range=facts.count,
            requested_by=_user(actor), requested_by_label=who["actor_label"], requested_at=timezone.now())
        kept = [store_evidence(actor=actor, park_id=source.park_id, upload=u, correction=correction)
                for u in evidence]
        record_change(actor=actor, action="correction.request", obj=correction, reason=reason,
                      park_code=source.park.code, after=_snapshot(correction, kept))
        transaction.on_commit(lambda: _enqueue("notify_approvers", correction.pk))
    return correction


def _snapshot(c: Correction, evidence=None) -> dict:
    out = {"source": c.source.source_id, "dataCode": c.data_item.code, "start": c.start.isoformat(),
           "end": c.end.isoformat(), "kind": c.kind, "newValue": c.new_value, "factor": c.factor,
           "state": c.state, "readingsInRange": c.readings_in_range}
    if evidence is not None:
        out["evidence"] = [{"name": e.original_name, "sha256": e.sha256, "size": e.size} for e in evidence]
    return out


def _enqueue(task: str, correction_id: int) -> None:
    from apps.corrections import tasks

    getattr(tasks, task).delay(correction_id)


# --- decisions ---------------------------------------------------------------------------------------------


def _decide(actor, correction_id: int, *, approve: bool, comment) -> Correction:
    comment = _text(comment, "comment", required=not approve)
    with transaction.atomic():
        try:
            c = Correction.objects.select_for_update().select_related("park", "source", "data_item") \
                .get(pk=correction_id)
        except Correction.DoesNotExist:
            raise CarbonParkError(errors.E8016, id=correction_id) from None
        # Never the requester: said plainly here, and again by the seam's "others' only" scope.
        user = _user(actor)
        if c.requested_by_id is not None and user is not None and user.pk == c.requested_by_id:
            raise CarbonParkError(errors.E8015)
        access.require(actor, Action.APPROVE, c.park_id, owner=c.requested_by)
        if c.state != Correction.State.REQUESTED:
            raise CarbonParkError(errors.E8014, state=c.get_state_display(),
                                  verb="approved" if approve else "rejected")
        before = {"state": c.state}
        c.state = Correction.State.APPROVED if approve else Correction.State.REJECTED
        c.decided_by = user
        c.decided_by_label = actor_fields(actor)["actor_label"]
        c.decided_at = timezone.now()
        c.comment = comment
        c.save(update_fields=["state", "decided_by", "decided_by_label", "decided_at", "comment"])
        record_change(actor=actor, action="correction.approve" if approve else "correction.reject", obj=c,
                      before=before, after={"state": c.state, "comment": comment}, reason=comment or c.reason,
                      park_code=c.park.code)
        if approve:
            transaction.on_commit(lambda: _enqueue("apply_correction", c.pk))
    return c


def approve_correction(*, actor, correction_id: int, comment="") -> Correction:
    """An approver of the park, never the requester, approves; the correction is applied once this commits
    (a Celery task, ``apply_correction``) (R-9.3.2.3)."""
    return _decide(actor, correction_id, approve=True, comment=comment)


def reject_correction(*, actor, correction_id: int, comment) -> Correction:
    """An approver of the park, never the requester, rejects with a comment (R-9.3.2.3)."""
    return _decide(actor, correction_id, approve=False, comment=comment)


# --- apply: the second named writer -------------------------------------------------------------------------

# The one statement head that writes revisions; the rows come from REVISE (a correction's range) or REVISE_VALUES.
INSERT_REVISIONS = """
INSERT INTO corrections_revision (park_id, source_id, data_item_id, ts, reading_id, value, previous_value,
                                  correction_id, written_at, written_by, flags)
"""
REVISE = INSERT_REVISIONS + """SELECT r.park_id, r.source_id, r.data_item_id, r.ts, r.id,
       CASE WHEN %(factor)s::float8 IS NULL THEN %(new)s::float8 ELSE coalesce(cur.value, r.value) * %(factor)s END,
       coalesce(cur.value, r.value), %(cid)s, %(now)s, %(by)s, %(flags)s
FROM ingestion_reading r
LEFT JOIN LATERAL (SELECT v.value FROM corrections_revision v
                   WHERE v.source_id = r.source_id AND v.data_item_id = r.data_item_id AND v.ts = r.ts
                   ORDER BY v.id DESC LIMIT 1) cur ON true
WHERE r.source_id = %(source)s AND r.data_item_id = %(item)s AND r.ts BETWEEN %(start)s AND %(end)s
  AND r.value IS NOT NULL
"""
# A value per reading, for revisions the platform makes (a repair by interpolation, a real reading replacing a
# fill): (ts, value, flags) arrays of the correction's series, inside its range.
REVISE_VALUES = INSERT_REVISIONS + """
SELECT r.park_id, r.source_id, r.data_item_id, r.ts, r.id, u.v, coalesce(cur.value, r.value), %(cid)s, %(now)s,
       %(by)s, u.f
FROM unnest(%(ts)s::timestamptz[], %(v)s::float8[], %(f)s::int2[]) AS u(t, v, f)
JOIN ingestion_reading r ON r.source_id = %(source)s AND r.data_item_id = %(item)s AND r.ts = u.t
LEFT JOIN LATERAL (SELECT v.value FROM corrections_revision v
                   WHERE v.source_id = r.source_id AND v.data_item_id = r.data_item_id AND v.ts = r.ts
                   ORDER BY v.id DESC LIMIT 1) cur ON true
WHERE r.value IS NOT NULL AND u.t BETWEEN %(start)s AND %(end)s AND u.v IS NOT NULL
"""
CORRECTED = 32  # apps.ingestion.models.Flag.CORRECTED


DIRTY = "INSERT INTO ingestion_rollup_dirty (park_id, source_id, data_item_id, lo, hi) VALUES (%s, %s, %s, %s, %s)"


def revise_readings(correction: Correction, *, written_by: str, now: datetime, values=None) -> int:
    """THE writer of revisions (ARCHITECTURE.md rule 1, R-9.3.1, R-9.3.2.1, R-9.3.2.3): one set-based
    INSERT … SELECT of a revision beside every numeric reading in the correction's range, the new value or the
    factor times the reading's effective value, with the effective value it replaces, flagged "corrected".

    ``values``: for the corrections the platform makes itself (kinds ``repair`` and ``late_reading``, from
    apps/quality/filling.py; ``resubmission``, apps/integrations/resubmit.py): a list of (ts, value, flags), one
    revision per reading of the correction's series at those times within its range, with that value and those
    flags ("repaired"; a late real reading's own; a re-pushed one's, "corrected").

    Runs inside the caller's transaction (an ingest batch's, for a late real reading: the writer it declared is
    given back afterwards); corrections of one source are applied one at a time (an advisory lock), so a factor
    always multiplies the value the previous correction left."""
    system = correction.kind in (Correction.Kind.REPAIR, Correction.Kind.LATE_READING, Correction.Kind.RESUBMISSION)
    if system != (values is not None):
        raise ValueError("per-reading values go with the platform's own corrections, and only with them")
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s), current_setting('carbonpark.writer', true), "
                    "set_config('carbonpark.writer', 'revise_readings', true)",
                    [LOCK_NAMESPACE, correction.source_id % 2**31])
        previous = cur.fetchone()[1] or ""
        try:
            common = {"cid": correction.pk, "now": now, "by": written_by[:150], "source": correction.source_id,
                      "item": correction.data_item_id, "start": correction.start, "end": correction.end}
            if values is None:
                cur.execute(REVISE, {**common, "factor": correction.factor, "new": correction.new_value,
                                     "flags": CORRECTED})
            else:
                ts, vals, flags = ([v[i] for v in values] for i in range(3))
                cur.execute(REVISE_VALUES, {**common, "ts": ts, "v": vals, "f": flags})
            count = cur.rowcount
            if count:  # the series' rollups are recomputed from the effective values within the refresh's 10 s
                mark_rollups_dirty(cur, DIRTY, [correction.park_id, correction.source_id, correction.data_item_id,
                                                correction.start, correction.end])
        finally:
            cur.execute("SELECT set_config('carbonpark.writer', %s, true)", [previous])
    return count


def apply_correction(correction_id: int, *, actor=None) -> Correction:
    """Apply an approved correction once (a row lock on it; an applied, rejected or requested one is left as
    it is): revisions written by ``revise_readings``, state applied, audited with who, when, how many, the
    reason and the evidence's hashes (R-9.3.2.3)."""
    actor = actor or access.SystemPrincipal("apply_correction")
    with transaction.atomic():
        c = Correction.objects.select_for_update().select_related("park", "source", "data_item") \
            .filter(pk=correction_id).first()
        if c is None or c.state != Correction.State.APPROVED:
            return c
        now = timezone.now()
        try:
            with transaction.atomic():
                count = revise_readings(c, written_by=c.decided_by_label or actor_fields(actor)["actor_label"],
                                        now=now)
        except DataError:  # a factor that overflows a value stored since the request
            raise CarbonParkError(errors.E8010, field="factor") from None
        c.state = Correction.State.APPLIED
        c.applied_at = now
        c.revised_count = count
        c.save(update_fields=["state", "applied_at", "revised_count"])
        evidence = list(c.evidence.all())
        record_change(actor=actor, action="correction.apply", obj=c, before={"state": "approved"},
                      after={**_snapshot(c, evidence), "revised": count, "requestedBy": c.requested_by_label,
                             "decidedBy": c.decided_by_label, "decidedAt": c.decided_at.isoformat()},
                      reason=c.reason, park_code=c.park.code)
    return c


# --- notifications --------------------------------------------------------------------------------------


def approvers_of(correction: Correction):
    """Users who may approve this correction: the park's members whose role approves, never its requester."""
    from django.contrib.auth import get_user_model

    from apps.accounts.models import Membership

    roles = [code for code, role in access.ROLES.items() if role.kind == "member" and Action.APPROVE in role.actions]
    ids = Membership.objects.filter(park_id=correction.park_id, role__in=roles).values("user_id")
    qs = get_user_model().objects.filter(pk__in=ids, is_active=True)
    if correction.requested_by_id:
        qs = qs.exclude(pk=correction.requested_by_id)
    return qs


def notify_approvers(correction_id: int) -> int:
    """E-mail the park's approvers that a correction awaits them (R-9.3.2.3); returns how many were told.
    The portal's list of corrections shows the same as "awaiting your approval"."""
    from django.core.mail import send_mass_mail
    from django.utils import translation

    c = Correction.objects.select_related("park", "source", "data_item").filter(pk=correction_id).first()
    if c is None or c.state != Correction.State.REQUESTED:
        return 0
    messages = []
    for user in approvers_of(c):
        if not user.email:
            continue
        with translation.override("zh-hans"):
            subject = f"[CarbonPark] 更正申请 #{c.pk} 待审批 / Correction #{c.pk} awaits your approval"
        body = (f"{c.park.code} {c.source.source_id} {c.data_item.code}\n"
                f"{c.start.isoformat()} – {c.end.isoformat()}\n"
                f"{'× ' + repr(c.factor) if c.factor is not None else '= ' + repr(c.new_value)} "
                f"({c.readings_in_range})\n"
                f"申请人 / requested by: {c.requested_by_label}\n原因 / reason: {c.reason}\n")
        messages.append((subject, body, settings.DEFAULT_FROM_EMAIL, [user.email]))
    return send_mass_mail(messages, fail_silently=False) if messages else 0
