"""Exports of park data with a SHA-256 manifest (R-7.3.4): readings (effective value, rawValue, revision),
corrections, revisions, the audit history and form versions, in CSV, XLSX, JSON or XML
(``apps.core.exports`` writes and zips them). Every kind reads through its app's selectors, scoped by the
access seam with ``Action.EXPORT``; every export is recorded on the audit trail.

A kind is registered with ``register(name, columns, rows)``: ``rows(principal, params)`` checks the filters
(``E1009`` for a bad one) and returns ``(filters as recorded, park code or "", row iterator)``."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.accounts import access, audit
from apps.accounts.access import Action
from apps.core import errors as core_errors
from apps.core import exports
from apps.core.errors import CarbonParkError
from apps.core.services import record_change
from apps.core.text import is_storable
from apps.corrections import selectors as corrections
from apps.corrections.models import Revision
from apps.entry import selectors as entry_selectors
from apps.ingestion import selectors as readings

MAX_PARAM = 500


@dataclass(frozen=True)
class Kind:
    name: str
    columns: list[str]
    rows: Callable[[object, dict], tuple[dict, str, Iterator[list]]]


KINDS: dict[str, Kind] = {}


def register(name: str, columns: list[str], rows) -> None:
    KINDS[name] = Kind(name, columns, rows)


def _bad(param: str, detail: str):
    return CarbonParkError(core_errors.E1009, param=param, detail=detail)


def clean_params(params) -> dict:
    """The query's filters as plain text; text no database or file can hold (NUL, a lost encoding shown as
    U+FFFD, lone surrogates) or too long is refused with E1009, never passed on to a query."""
    out = {}
    for name in params:
        value = params.get(name)
        if not isinstance(value, str) or not is_storable(value) or "\ufffd" in value or len(value) > MAX_PARAM:
            raise _bad(str(name)[:40] if is_storable(str(name)) else "?", "not valid text (UTF-8, no NUL)")
        out[name] = value
    return out


def _when(params: dict, name: str) -> dt.datetime | None:
    if not params.get(name):
        return None
    try:
        value = parse_datetime(params[name])
    except ValueError:
        value = None
    if value is None:
        raise _bad(name, "an ISO 8601 date and time, e.g. 2026-01-31T08:00:00+08:00")
    return value if value.tzinfo else value.replace(tzinfo=zoneinfo.ZoneInfo(settings.TIME_ZONE))


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def _park_code(principal, params: dict, action: Action = Action.EXPORT) -> tuple[str, list[int] | None]:
    """(park code, [its id]) when ``park`` is given and the principal may ``action`` there; refused like an
    unknown park otherwise. ("", None) without it: every park the seam leaves."""
    code = params.get("park", "")
    if not code:
        return "", None
    ids = list(access.parks(principal, action).filter(code=code).values_list("pk", flat=True))
    if not ids:
        raise _bad("park", f"unknown park {code}")
    return code, ids


# --- readings -----------------------------------------------------------------------------------------------

READING_COLUMNS = list(readings.CSV_HEADER)


def _readings(principal, params):
    if params.get("interval"):
        raise _bad("interval", "exports hold readings; rollups are read from /api/v1/readings?interval=")
    code, ids = _park_code(principal, params)
    query = readings.ReadingQuery.from_params(params, principal, Action.EXPORT)
    filters = {k: params[k] for k in ("park", "sourceId", "dataCode", "start", "end", "flag", "view")
               if params.get(k)}
    qs = query.queryset()
    if ids is not None:
        qs = qs.filter(park_id__in=ids)

    def rows():
        view = readings.RecordView()
        for row in query.rows(qs.order_by("ts", "id")).iterator(chunk_size=5000):
            rec = view.record(row)
            yield [rec["sourceId"], rec["dataCode"], rec["timestamp"], rec["value"], rec["unit"], rec["status"],
                   rec["backfill"], ";".join(rec["flags"]), rec.get("receivedValue"), rec.get("receivedUnit"),
                   rec["rawValue"], rec["revision"]]

    return filters, code, rows()


register("readings", READING_COLUMNS, _readings)

# --- corrections and revisions ------------------------------------------------------------------------------

CORRECTION_COLUMNS = ["id", "park", "sourceId", "dataCode", "start", "end", "kind", "newValue", "factor", "reason",
                      "state", "requestedBy", "requestedAt", "decidedBy", "decidedAt", "comment", "appliedAt",
                      "revisedCount", "readingsInRange"]


def _corrections(principal, params):
    code, ids = _park_code(principal, params)
    qs = corrections.corrections_for(principal, Action.EXPORT)
    if ids is not None:
        qs = qs.filter(park_id__in=ids)
    if params.get("state"):
        qs = qs.filter(state=params["state"])
    since, until = _when(params, "since"), _when(params, "until")
    if since:
        qs = qs.filter(requested_at__gte=since)
    if until:
        qs = qs.filter(requested_at__lte=until)
    filters = {k: params[k] for k in ("park", "state", "since", "until") if params.get(k)}

    def rows():
        for c in qs.order_by("requested_at", "id").iterator(chunk_size=2000):
            yield [c.pk, c.park.code, c.source.source_id, c.data_item.code, _iso(c.start), _iso(c.end), c.kind,
                   c.new_value, c.factor, c.reason, c.state, c.requested_by_label, _iso(c.requested_at),
                   c.decided_by_label, _iso(c.decided_at), c.comment, _iso(c.applied_at), c.revised_count,
                   c.readings_in_range]

    return filters, code, rows()


register("corrections", CORRECTION_COLUMNS, _corrections)

REVISION_COLUMNS = ["id", "park", "sourceId", "dataCode", "timestamp", "readingId", "value", "previousValue",
                    "correction", "writtenAt", "writtenBy"]


def _revisions(principal, params):
    code, ids = _park_code(principal, params)
    qs = access.restrict(Revision.objects.select_related("park", "source", "data_item"), principal, Action.EXPORT)
    if ids is not None:
        qs = qs.filter(park_id__in=ids)
    if params.get("correction"):
        if not params["correction"].isdigit() or len(params["correction"]) > 18:
            raise _bad("correction", "a correction's id")
        qs = qs.filter(correction_id=int(params["correction"]))
    filters = {k: params[k] for k in ("park", "correction") if params.get(k)}

    def rows():
        for r in qs.order_by("id").iterator(chunk_size=5000):
            yield [r.pk, r.park.code, r.source.source_id, r.data_item.code, _iso(r.ts), r.reading_id, r.value,
                   r.previous_value, r.correction_id, _iso(r.written_at), r.written_by]

    return filters, code, rows()


register("revisions", REVISION_COLUMNS, _revisions)

# --- the audit history --------------------------------------------------------------------------------------

AUDIT_COLUMNS = [name for name, _label in audit.EXPORT_COLUMNS]


def _history(principal, params):
    code, _ids = _park_code(principal, params, Action.AUDIT)
    f = audit.TimelineFilter(who=params.get("who", ""), what=params.get("what", ""), text=params.get("text", ""),
                             object_type=params.get("object_type", ""), object_id=params.get("object_id", ""),
                             park=code, since=_when(params, "since"), until=_when(params, "until"))
    if f.object_type and f.object_type not in {label for label, _n in audit.object_types()} \
            and f.object_type != "core.auditentry":
        raise _bad("object_type", "a model label, e.g. sources.datasource")
    tz = zoneinfo.ZoneInfo(settings.TIME_ZONE)

    def rows():  # in parks where the principal may both audit and export (iter_timeline's default)
        for row in audit.iter_timeline(principal, f):
            yield audit.export_values(row, tz)

    return f.as_dict(), code, rows()


register("history", AUDIT_COLUMNS, _history)

# --- form versions --------------------------------------------------------------------------------------------

FORM_COLUMNS = ["form", "park", "number", "contentHash", "publishedAt", "publishedBy", "definition"]


def _forms(principal, params):
    code, ids = _park_code(principal, params)
    qs = entry_selectors.versions_for(principal, Action.EXPORT)
    if ids is not None:
        qs = qs.filter(form__park_id__in=ids)
    if params.get("form"):
        qs = qs.filter(form__code=params["form"])
    filters = {k: params[k] for k in ("park", "form") if params.get(k)}

    def rows():
        for v in qs.order_by("form__code", "number").iterator(chunk_size=500):
            yield [v.form.code, v.form.park.code if v.form.park_id else None, v.number, v.content_hash,
                   _iso(v.published_at), v.published_by_label,
                   json.dumps(v.definition, ensure_ascii=False, sort_keys=True)]

    return filters, code, rows()


register("forms", FORM_COLUMNS, _forms)


# --- submissions ----------------------------------------------------------------------------------------------

SUBMISSION_COLUMNS = ["id", "form", "version", "park", "period", "state", "createdBy", "createdAt", "submittedBy",
                      "submittedAt", "reviewer", "reviewedAt", "reviewComment", "updatedAt", "values"]


def _submissions(principal, params):
    code, ids = _park_code(principal, params)
    qs = entry_selectors.submissions_for(principal, Action.EXPORT).select_related("form", "version", "park")
    if ids is not None:
        qs = qs.filter(park_id__in=ids)
    if params.get("form"):
        qs = qs.filter(form__code=params["form"])
    if params.get("state"):
        qs = qs.filter(state=params["state"])
    since, until = _when(params, "since"), _when(params, "until")
    if since:
        qs = qs.filter(updated_at__gte=since)
    if until:
        qs = qs.filter(updated_at__lte=until)
    filters = {k: params[k] for k in ("park", "form", "state", "since", "until") if params.get(k)}

    def rows():
        for s in qs.order_by("period_start", "id").iterator(chunk_size=2000):
            yield [s.pk, s.form.code, s.version.number, s.park.code, s.period_start.isoformat(), s.state,
                   s.created_by_label, _iso(s.created_at), s.submitted_by_label or None, _iso(s.submitted_at),
                   s.reviewer_label or None, _iso(s.reviewed_at), s.review_comment, _iso(s.updated_at),
                   json.dumps(s.values, ensure_ascii=False, sort_keys=True)]

    return filters, code, rows()


register("submissions", SUBMISSION_COLUMNS, _submissions)


# --- quality indicators (R-9.1) -------------------------------------------------------------------------------

INDICATOR_COLUMNS = ["park", "sourceId", "sourceName", "dataCode", "month", "collectionMethod", "automatic",
                     "intervalSeconds", "periodSeconds", "expected", "present", "completeness", "gaps", "gapSeconds",
                     "continuity", "patched", "fillRate", "readings", "timely", "timeliness", "flagged", "hits",
                     "inconsistent", "consistency", "instrumentType", "accuracyClass", "requiredClass", "accuracyOk"]


def _indicators(principal, params):
    from apps.quality.indicators import api as indicators

    code, _ids = _park_code(principal, params)
    qs, given = indicators.filtered(principal, params, Action.EXPORT)

    def rows():
        for r in indicators.ordered(qs).iterator(chunk_size=2000):
            rec = indicators.record(r)
            yield [rec[c] for c in INDICATOR_COLUMNS]

    return given, code, rows()


register("indicators", INDICATOR_COLUMNS, _indicators)
KIND_NAMES = tuple(KINDS)


# --- the service ----------------------------------------------------------------------------------------------

def export(principal, kind: str, file_format: str, params) -> exports.Export:
    """Export ``kind`` in ``file_format`` with its manifest (R-7.3.4), scoped by ``Action.EXPORT`` through the
    access seam (the history also by ``Action.AUDIT``), and record it on the audit trail (R-7.3.2). ``params``:
    the kind's filters; a bad one is refused with E1009 before anything is read."""
    if kind not in KINDS:
        raise CarbonParkError(core_errors.E1010, detail=f"export kind {kind[:40]}")
    if file_format not in exports.FORMATS:
        raise _bad("format", "csv, xlsx, json or xml")
    params = clean_params(params)
    spec = KINDS[kind]
    filters, park_code, rows = spec.rows(principal, params)
    now = timezone.now()
    who = getattr(principal, "audit_label", None) or getattr(principal, "get_username", lambda: str(principal))()
    stamp = timezone.localtime(now).strftime("%Y%m%d-%H%M%S")
    try:
        result = exports.build(kind, file_format, spec.columns, rows, filters=filters, exported_by=str(who)[:150],
                               exported_at=now.isoformat(), base_name=f"{kind}-{park_code or 'all'}-{stamp}")
    except OverflowError:
        raise _bad("format", f"more than {exports.XLSX_MAX_ROWS} rows: choose csv") from None
    record_change(actor=principal, action=f"export.{kind}", object_type="export",
                  object_id=result.manifest["exportId"],
                  after={"name": result.name, "format": file_format, "filters": filters,
                         "rows": result.manifest["rows"], "sha256": result.manifest["files"][0]["sha256"],
                         "manifestSha256": result.manifest_sha256}, park_code=park_code)
    return result
