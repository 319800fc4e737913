"""Writes of submissions: drafts, evidence, submit, review, restore (R-7.3.1.2–3, R-7.3.2, R-6.5).

A form's values become readings through ``ingest_readings`` (channel ``form``) only, from one data source per
park: ``<PARK>-FORM`` ("manual entry"), made on demand through ``apps.sources`` services with the items the
park's forms use bound to it. A value is stored at the period's start (00:00 in the park's zone); the values
of a repeat section's row ``i`` at that time plus ``i + 1`` seconds, so rows of the same item are distinct
readings. Each stored reading is linked to its submission (``SubmissionReading``).

Once a value is stored, a change to it never overwrites it: a resubmission with another number asks a
correction (apps.corrections) of that reading, decided with the review (approved with the submission, rejected
when it is returned). Every change of a submission is a version (django-simple-history) with who and why."""

from __future__ import annotations

import re
import zoneinfo
from datetime import date, datetime, timedelta

from django.core.files.base import File
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts import access
from apps.accounts.access import Action
from apps.core.errors import CarbonParkError
from apps.core.services import actor_fields, record_change
from apps.entry import errors
from apps.entry.models import Attachment, Form, FormVersion, Submission, SubmissionReading, UsedNumber
from apps.entry.validation import validate_values

SOURCE_SUFFIX = "-FORM"
COMMENT_MAX = 2000
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|[\ud800-\udfff]")
EDITABLE = (Submission.State.DRAFT, Submission.State.RETURNED)
VERBS = {"saved": "保存", "submitted": "提交", "approved": "批准", "returned": "退回", "restored": "恢复"}


class ValuesError(CarbonParkError):
    """A submission refused for its values: ``problems`` lists every field error (validate_values' shape)."""

    def __init__(self, problems: list[dict]):
        self.problems = problems
        super().__init__(errors.E8304, count=len(problems))

    def as_dict(self) -> dict:
        body = super().as_dict()
        body["errors"] = self.problems
        return body


def _user(actor):
    from django.contrib.auth.models import AbstractBaseUser

    return actor if isinstance(actor, AbstractBaseUser) and actor.pk else None


def _comment(value, *, required: bool) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if (value is not None and not isinstance(value, str)) or (required and not text) or CONTROL.search(text) \
            or len(text) > COMMENT_MAX:
        raise CarbonParkError(errors.E8310, field="comment", limit=COMMENT_MAX)
    return text


PERIOD_NAMES_ZH = {"day": "日", "month": "月", "quarter": "季度", "year": "年"}
PERIOD_FORMS = {"day": "YYYY-MM-DD", "month": "YYYY-MM", "quarter": "YYYY-Qn", "year": "YYYY"}


def _named_start(period: str, text: str) -> date | None:
    """The first day named by ``text`` in the form's own period's words: YYYY-MM-DD (or YYYYMMDD, as §7's file
    names write it), and for a month YYYY-MM (YYYYMM), a quarter YYYY-Qn (YYYYQn), a year YYYY; else None."""
    text = text.strip()
    if m := re.fullmatch(r"([0-9]{4})-?([0-9]{2})-?([0-9]{2})", text):
        return date(int(m[1]), int(m[2]), int(m[3]))
    if period in ("month", "quarter", "year") and (m := re.fullmatch(r"([0-9]{4})-?([0-9]{2})", text)):
        return date(int(m[1]), int(m[2]), 1)
    if period == "quarter" and (m := re.fullmatch(r"([0-9]{4})-?[Qq]([1-4])", text)):
        return date(int(m[1]), 3 * int(m[2]) - 2, 1)
    if period == "year" and (m := re.fullmatch(r"([0-9]{4})", text)):
        return date(int(m[1]), 1, 1)
    return None


def period_start(period: str, value) -> date:
    """The first day of the period ``value`` names, else E8305 (R-7.3.1.2). A date must be the period's first
    day; a month, quarter or year may also be named as such (2026-11, 2026-Q4, 2026)."""
    try:
        day = _named_start(period, value[:20]) if isinstance(value, str) else None
    except ValueError:
        day = None
    ok = day is not None and 2000 <= day.year <= 2100 and (
        period == "day" or (day.day == 1 and (period == "month" or (period == "quarter" and day.month in (1, 4, 7, 10))
                                              or (period == "year" and day.month == 1))))
    if not ok:
        raise CarbonParkError(errors.E8305, field="period", value=str(value)[:20], period=period,
                              period_zh=PERIOD_NAMES_ZH.get(period, period), form=PERIOD_FORMS.get(period, ""))
    return day


def _save(sub: Submission, actor, reason: str) -> None:
    sub.updated_at = timezone.now()
    sub._history_user = _user(actor)
    sub._change_reason = (reason or "")[:100]
    sub.save()


def _locked(submission_id) -> Submission:
    try:
        return Submission.objects.select_for_update(of=("self",)).select_related("park", "form", "version") \
            .get(pk=int(submission_id))
    except (Submission.DoesNotExist, TypeError, ValueError, OverflowError):
        raise CarbonParkError(errors.E8301, id=str(submission_id)[:20]) from None


def _state_error(sub: Submission, verb: str) -> CarbonParkError:
    return CarbonParkError(errors.E8302, state=sub.get_state_display(), verb=verb, verb_zh=VERBS.get(verb, verb))


def _snapshot(sub: Submission) -> dict:
    return {"form": sub.form.code, "version": sub.version.number, "park": sub.park.code,
            "period": sub.period_start.isoformat(), "state": sub.state, "values": sub.values}


# --- drafts ----------------------------------------------------------------------------------------------


@transaction.atomic
def save_draft(*, actor, form: Form, park, period, values, lang: str = "zh-hans",
               reason: str = "") -> tuple[Submission, list[dict]]:
    """Save (autosave) the values of ``form`` for ``park`` and ``period`` as a draft (R-7.3.1.2): the one
    submission of that form, park and period, made on first save with the form's current version. Only what
    validates is kept (the cleaned values); the errors come back to show at their fields. A submitted or
    approved submission is not a draft: E8302. Needs ``enter`` in the park."""
    access.require(actor, Action.ENTER, park)
    version = form.versions.order_by("-number").first()
    if version is None:
        raise CarbonParkError(errors.E8311, code=form.code)
    start = period_start(version.definition.get("period", "month"), period)
    sub = Submission.objects.select_for_update(of=("self",)).filter(form=form, park=park, period_start=start).first()
    now = timezone.now()
    who = actor_fields(actor)
    if sub is None:
        sub = Submission(form=form, version=version, park=park, period_start=start, created_by=_user(actor),
                         created_by_label=who["actor_label"], created_at=now)
    elif sub.state not in EDITABLE:
        raise _state_error(sub, "saved")
    cleaned, problems = check_values(sub.version, park, start, values, lang=lang)
    if sub.pk and cleaned == sub.values:
        return sub, problems  # an autosave of nothing new makes no version
    sub.values = cleaned
    _save(sub, actor, reason or "draft saved")
    return sub, problems


def add_attachment(*, actor, submission_id, upload, field: str = "") -> Attachment:
    """Keep one evidence file of a submission, for one attachment field (its path) or for the whole submission
    (R-6.4, R-6.5): PDF, PNG or JPEG by content, at most EVIDENCE_MAX_BYTES, under MEDIA_ROOT/entry/ named by
    its SHA-256. The check is the corrections' evidence check, shared (E8012, E8013)."""
    from apps.corrections.services import check_evidence, hash_file

    field = field if isinstance(field, str) and len(field) <= 200 and not CONTROL.search(field) else ""
    with transaction.atomic():
        sub = _locked(submission_id)
        access.require(actor, Action.ENTER, sub.park_id)
        if sub.state not in EDITABLE:
            raise _state_error(sub, "saved")
        ctype, ext, name = check_evidence(upload)
        sha = hash_file(upload)
        att = Attachment(park_id=sub.park_id, submission=sub, field=field, original_name=name, content_type=ctype,
                         size=upload.size, sha256=sha, uploaded_by_label=actor_fields(actor)["actor_label"],
                         uploaded_at=timezone.now())
        att.file.save(f"{sha}{ext}", File(upload), save=False)
        att.save()
        record_change(actor=actor, action="submission.attach", obj=sub, park_code=sub.park.code,
                      after={"attachment": att.pk, "field": field, "name": name, "sha256": sha, "size": att.size})
    return att


# --- submit ----------------------------------------------------------------------------------------------


def _fields(definition: dict):
    """(field, section) of every field, document order."""
    for s in definition.get("sections") or []:
        for f in s.get("fields") or []:
            yield f, s


def _walk_values(definition: dict, values: dict):
    """(field, path, row index or None, value) of every stored value."""
    for s in definition.get("sections") or []:
        if s.get("repeat") is not None:
            for i, row in enumerate(values.get(s["key"]) or []):
                for f in s["fields"]:
                    if row.get(f["key"]) is not None:
                        yield f, f"{s['key']}[{i}].{f['key']}", i, row[f["key"]]
        else:
            for f in s["fields"]:
                if values.get(f["key"]) is not None:
                    yield f, f["key"], None, values[f["key"]]


def _check_attachments(sub: Submission, walked: list) -> None:
    ids = {str(a) for a in sub.attachments.values_list("pk", flat=True)}
    for f, path, _i, value in walked:
        if f.get("type") == "attachment" and str(value) not in ids:
            raise ValuesError([_problem(path, errors.E8307)])


def _check_evidence_demanded(sub: Submission, walked: list) -> None:
    """Evidence where the item or the source demands it (R-6.3–6.5). An item marked ``evidence_required`` in the
    catalog (calorific values from test reports, verified removals, Table 3's offsets) needs a file for that
    field, for its repeat row, or for the whole submission (E8315 at each such value). A park whose manual-entry
    source is marked ``evidence_required`` submits item-bound values only with at least one file (E8307)."""
    from apps.catalog.models import DataItem
    from apps.sources.models import DataSource

    bound = [(f["item"], path) for f, path, _i, _v in walked if f.get("item")]
    if not bound:
        return
    with_files = set(sub.attachments.values_list("field", flat=True))
    demanded = set(DataItem.objects.filter(code__in={code for code, _ in bound}, evidence_required=True)
                   .values_list("code", flat=True))

    def covered(path: str) -> bool:
        row = path.rsplit(".", 1)[0] + "." if "[" in path else None
        return "" in with_files or path in with_files or (row is not None and any(
            name.startswith(row) for name in with_files))

    missing = [_problem(path, errors.E8315, item=code) for code, path in bound
               if code in demanded and not covered(path)]
    if missing:
        raise ValuesError(missing)
    source_demands = DataSource.objects.filter(park_id=sub.park_id, source_id=f"{sub.park.code}{SOURCE_SUFFIX}",
                                               evidence_required=True).exists()
    if source_demands and not with_files:
        raise ValuesError([_problem("", errors.E8307)])


def check_values(version, park, period_start, values, *, lang: str = "zh-hans") -> tuple[dict, list[dict]]:
    """The form's own checks (``validate_values``) and then the park's rule library on the values that passed
    them (apps.entry.rules, R-9.2.3): ``(cleaned, errors)``; rules that only flag or warn are not errors. What
    drafts, submissions and imports run (R-7.3.1.2–3)."""
    from apps.entry.rules import rule_problems

    cleaned, problems = validate_values(version, values, lang=lang)
    bad, _warnings = rule_problems(getattr(version, "definition", version), park, period_start, cleaned, lang=lang)
    return cleaned, problems + bad


def _problem(path: str, err, **params) -> dict:
    return {"path": path, "code": err.code, "message": err.message(**params), "messages": err.messages(**params)}


def _take_numbers(sub: Submission, walked: list) -> None:
    """Claim every ``unique`` number of the submission (R-6.5); free the ones it no longer uses. The unique
    constraint decides between concurrent submissions: the loser waits for the winner's commit, then fails."""
    wanted = {}
    for f, path, _i, value in walked:
        if f.get("unique") and isinstance(value, str) and value.strip():
            wanted[(f.get("item") or f"field:{f['key']}", value.strip())] = path
    sub.used_numbers.exclude(pk__in=[u.pk for u in sub.used_numbers.all()
                                     if (u.scope, u.number) in wanted]).delete()
    mine = {(u.scope, u.number) for u in sub.used_numbers.all()}
    now = timezone.now()
    for (scope, number), path in wanted.items():
        if (scope, number) in mine:
            continue
        try:
            with transaction.atomic():
                UsedNumber.objects.create(scope=scope, number=number, submission=sub, park_id=sub.park_id,
                                          field=path, created_at=now)
        except IntegrityError:
            first = UsedNumber.objects.select_related("submission__form", "park").filter(
                scope=scope, number=number).first()
            params = {"number": number[:100], "first": f"#{first.submission_id}" if first else "?",
                      "park": first.park.code if first else "?",
                      "form": first.submission.form.code if first else "?",
                      "period": first.submission.period_start.isoformat() if first else "?"}
            raise CarbonParkError(errors.E8303, field=path, **params) from None


def manual_source(park, item_codes: set[str], actor):
    """The park's manual-entry data source (``<PARK>-FORM``, kind and protocol ``form``), made on demand and
    bound to ``item_codes`` as forms need them, through the sources service (audited, picked up by ingestion)."""
    from apps.catalog.models import DataItem
    from apps.sources.models import DataSource
    from apps.sources.services.sources import save_source

    source = DataSource.objects.filter(park=park, kind=DataSource.Kind.FORM, source_id=f"{park.code}{SOURCE_SUFFIX}") \
        .first()
    bound = set(source.data_items.values_list("code", flat=True)) if source else set()
    if source is not None and item_codes <= bound:
        return source
    items = list(DataItem.objects.filter(code__in=item_codes | bound))
    if source is None:
        return save_source(actor=actor, source_id=f"{park.code}{SOURCE_SUFFIX}"[:64], park=park,
                           name="手工填报 manual entry", kind=DataSource.Kind.FORM,
                           protocol=DataSource.Protocol.FORM, collection_method="manual",
                           expected_interval_s=366 * 86400, data_items=items, reason="forms: manual entry")
    return save_source(actor=actor, source=source, data_items=items, reason="forms: items of a submission")


def _ts(sub: Submission, row) -> datetime:
    tz = zoneinfo.ZoneInfo(sub.park.time_zone)
    start = datetime(sub.period_start.year, sub.period_start.month, sub.period_start.day, tzinfo=tz)
    return start + timedelta(seconds=0 if row is None else row + 1)


def _store_readings(sub: Submission, walked: list, actor, reason: str) -> dict:
    """New values → ingest_readings; changed stored numbers → a correction each; anything else stored that
    changed or vanished → E8308. Returns counts."""
    from apps.corrections.services import request_correction
    from apps.ingestion.services import ingest_readings

    bound = [(f, path, i, v) for f, path, i, v in walked if f.get("item") and f.get("type") != "attachment"]
    links = {(lk.data_item.code, lk.ts): lk for lk in sub.readings.select_related("data_item")}
    if not bound and not links:
        return {"stored": 0, "corrections": 0}
    source = manual_source(sub.park, {f["item"] for f, *_ in bound}, actor)
    new, seen, asked = [], set(), 0
    for f, path, i, value in bound:
        ts = _ts(sub, i)
        key = (f["item"], ts)
        seen.add(key)
        link = links.get(key)
        if link is None:
            new.append((f, path, ts, value))
        elif link.value != value:
            if f.get("type") != "number":
                raise CarbonParkError(errors.E8308, field=path, path=path)
            if link.correction_id is not None and link.correction.new_value == value:
                continue
            local = ts.astimezone(zoneinfo.ZoneInfo(sub.park.time_zone)).strftime("%Y-%m-%d %H:%M:%S")
            c = request_correction(actor=actor, source_id=source.source_id, data_code=f["item"], start=local,
                                   end=local, new_value=value,
                                   reason=f"submission #{sub.pk} {path}: {reason or 'resubmitted'}"[:2000])
            link.correction = c
            link.save(update_fields=["correction"])
            asked += 1
    gone = [lk for key, lk in links.items() if key not in seen]
    if gone:
        raise CarbonParkError(errors.E8308, field=gone[0].field, path=gone[0].field)
    if new:
        records = [{"sourceId": source.source_id, "dataCode": f["item"],
                    "timestamp": ts.astimezone(zoneinfo.ZoneInfo(sub.park.time_zone)).strftime("%Y-%m-%d %H:%M:%S"),
                    "value": value} for f, _p, ts, value in new]
        result = ingest_readings(records, channel="form", actor=actor, parks=[sub.park_id])
        if result.rejected:
            r = result.rejected[0]
            path = new[r["index"]][1]
            raise CarbonParkError(errors.E8312, field=path, path=path, detail=r["message_en"])
        if result.duplicates:
            raise CarbonParkError(errors.E8312, field=new[0][1], path=new[0][1],
                                  detail="a reading of that item exists already at that time (another form?)")
        pks = _item_pks({f["item"] for f, *_ in new})
        SubmissionReading.objects.bulk_create([
            SubmissionReading(submission=sub, park_id=sub.park_id, source=source, data_item_id=pks[f["item"]],
                              ts=ts, field=path, value=value) for f, path, ts, value in new])
    return {"stored": len(new), "corrections": asked}


def _item_pks(codes: set[str]) -> dict[str, int]:
    from apps.catalog.models import DataItem

    return dict(DataItem.objects.filter(code__in=codes).values_list("code", "pk"))


@transaction.atomic
def submit(*, actor, submission_id, values=None, lang: str = "zh-hans", reason: str = "") -> Submission:
    """Submit a draft or a returned submission (R-7.3.1.2–3, R-6.5): its values must pass ``validate_values``
    (hidden fields are neither checked nor kept), attachment fields must name its own evidence, ``unique``
    numbers must be unused on the platform (E8303 names the first user); then its item-bound values go through
    ``ingest_readings`` (channel ``form``) and each stored reading is linked to it. A value stored by an earlier
    submission that changed becomes a correction, never an overwrite (R-7.3.2). ``values`` given: saved first.
    Needs ``enter`` in the park. All or nothing."""
    sub = _locked(submission_id)
    access.require(actor, Action.ENTER, sub.park_id)
    if sub.state not in EDITABLE:
        raise _state_error(sub, "submitted")
    raw = sub.values if values is None else values
    cleaned, problems = check_values(sub.version, sub.park, sub.period_start, raw, lang=lang)
    if problems:
        raise ValuesError(problems)
    walked = list(_walk_values(sub.version.definition, cleaned))
    _check_attachments(sub, walked)
    _check_evidence_demanded(sub, walked)
    _take_numbers(sub, walked)
    counts = _store_readings(sub, walked, actor, reason)
    before = sub.state
    who = actor_fields(actor)
    sub.values = cleaned
    sub.state = Submission.State.SUBMITTED
    sub.submitted_by, sub.submitted_by_label, sub.submitted_at = _user(actor), who["actor_label"], timezone.now()
    _save(sub, actor, reason or "submitted")
    record_change(actor=actor, action="submission.submit", obj=sub, park_code=sub.park.code, reason=reason,
                  before={"state": before}, after={**_snapshot(sub), **counts})
    return sub


# --- review ----------------------------------------------------------------------------------------------


def _review(actor, submission_id, *, approve: bool, comment) -> Submission:
    from apps.corrections.services import approve_correction, reject_correction

    comment = _comment(comment, required=not approve)
    with transaction.atomic():
        sub = _locked(submission_id)
        user = _user(actor)
        if sub.submitted_by_id is not None and user is not None and user.pk == sub.submitted_by_id:
            raise CarbonParkError(errors.E8306)
        access.require(actor, Action.APPROVE, sub.park_id, owner=sub.submitted_by)
        if sub.state != Submission.State.SUBMITTED:
            raise _state_error(sub, "approved" if approve else "returned")
        for link in sub.readings.filter(correction__isnull=False).select_related("correction"):
            c = link.correction
            if c.state == c.State.REQUESTED:
                decide = approve_correction if approve else reject_correction
                decide(actor=actor, correction_id=c.pk, comment=comment or f"submission #{sub.pk} approved")
            if approve:
                link.value = c.new_value if c.new_value is not None else link.value
            link.correction = None
            link.save(update_fields=["value", "correction"])
        sub.state = Submission.State.APPROVED if approve else Submission.State.RETURNED
        sub.reviewer, sub.reviewer_label = user, actor_fields(actor)["actor_label"]
        sub.reviewed_at, sub.review_comment = timezone.now(), comment
        _save(sub, actor, comment or ("approved" if approve else "returned"))
        record_change(actor=actor, action="submission.approve" if approve else "submission.return", obj=sub,
                      park_code=sub.park.code, reason=comment, before={"state": "submitted"},
                      after={"state": sub.state, "comment": comment})
    return sub


def approve(*, actor, submission_id, comment="") -> Submission:
    """A reviewer of the park, never the submitter, approves a submitted submission (R-7.3.2); the corrections
    its resubmission asked for are approved with it."""
    return _review(actor, submission_id, approve=True, comment=comment)


def return_submission(*, actor, submission_id, comment) -> Submission:
    """A reviewer of the park, never the submitter, returns a submitted submission to its clerk with a comment
    (R-7.3.2); the corrections its resubmission asked for are rejected with that comment."""
    return _review(actor, submission_id, approve=False, comment=comment)


# --- versions --------------------------------------------------------------------------------------------


@transaction.atomic
def restore(*, actor, submission_id, version: int, reason: str = "") -> Submission:
    """Restore the values of an earlier version as a new version of a draft or returned submission (R-7.3.2);
    the versions between stay in the history. Needs ``enter`` in the park."""
    from apps.entry.selectors import versions_of

    sub = _locked(submission_id)
    access.require(actor, Action.ENTER, sub.park_id)
    if sub.state not in EDITABLE:
        raise _state_error(sub, "restored")
    old = dict(versions_of(sub)).get(version) if isinstance(version, int) else None
    if old is None:
        raise CarbonParkError(errors.E8313, version=str(version)[:20])
    sub.values = old.values
    _save(sub, actor, (reason or f"restored version {version}"))
    record_change(actor=actor, action="submission.restore", obj=sub, park_code=sub.park.code, reason=reason,
                  after={"restored": version, "values": sub.values})
    return sub


def version_for(form: Form) -> FormVersion | None:
    return form.versions.order_by("-number").first()
