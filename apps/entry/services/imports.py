"""Loading a filled Excel template into a submission (R-7.3.4): read and check every cell (apps.entry.excel),
then save it as the park's draft of that form and period, and submit it when asked, through the submission
services (``save_draft``, ``submit``) inside one transaction. Any error, in a cell or at storage (a number used
already, evidence missing, a value refused by ingestion), rolls everything back: a file is loaded whole or not
at all, and the report names each error's sheet, row and column where it has one."""

from __future__ import annotations

from django.db import transaction

from apps.accounts import access
from apps.accounts.access import Action
from apps.core.errors import CarbonParkError
from apps.entry import errors
from apps.entry.excel import read_filled, template_version
from apps.entry.excel.reader import ReadResult, _entry, missing_evidence
from apps.entry.models import Form, Submission
from apps.entry.services.submissions import EDITABLE, ValuesError, period_start, save_draft, submit


def _file_error(result: ReadResult, err, lang: str, field: str | None = None, **params) -> ReadResult:
    entry = _entry(err, lang, path=field or "", params=params)
    result.errors.append(result.locate(entry) if field else entry)
    return result


def _attachments(version, values: dict) -> dict:
    """The top-level attachment values of an existing draft (evidence ids): a file has no cell for them, so
    they are kept rather than cleared by the import."""
    keys = {f["key"] for s in version.definition.get("sections") or [] if s.get("repeat") is None
            for f in s.get("fields") or [] if f.get("type") == "attachment"}
    return {k: v for k, v in (values or {}).items() if k in keys}


def import_file(*, actor, form: Form, park, period, file, submit_it: bool = False,
                lang: str = "zh-hans", file_name: str = "") -> ReadResult:
    """Import a filled template of ``form`` as ``park``'s submission for ``period`` (R-7.3.4, R-7.3.1.2): a
    draft, or submitted when ``submit_it``. The file must be a template of the version the submission uses
    (its current version for a new one). Needs ``enter`` in the park (``AccessDenied`` otherwise). Returns the
    report: ``errors`` by sheet/row/column and nothing stored, or ``stored`` and the ``submission``."""
    access.require(actor, Action.ENTER, park)
    result = ReadResult()
    if form.park_id not in (None, park.pk):
        return _file_error(result, errors.E8311, lang, code=form.code)
    data = file if isinstance(file, bytes | bytearray) else file.read()
    latest = form.versions.order_by("-number").first()
    if latest is None:
        return _file_error(result, errors.E8311, lang, code=form.code)
    try:
        start = period_start(latest.definition.get("period", "month"), period)
    except CarbonParkError as exc:
        return _file_error(result, exc.error, lang, **exc.params)
    existing = Submission.objects.filter(form=form, park=park, period_start=start).select_related("version").first()
    if existing is not None and existing.state not in EDITABLE:
        return _file_error(result, errors.E8302, lang, state=existing.get_state_display(), verb="imported",
                           verb_zh="导入")
    version = existing.version if existing is not None else latest
    made_from = template_version(bytes(data))
    if made_from is not None and made_from[0] != form.code:
        return _file_error(result, errors.E8404, lang, expected=f"{form.code} v{version.number}",
                           found=f"{made_from[0]} v{made_from[1]}"[:100])
    result = read_filled(version, bytes(data), lang=lang)
    if result.errors:
        return result
    values = {**result.values, **_attachments(version, existing.values if existing else {})}
    reason = f"imported from {file_name or 'an Excel file'}"[:100]
    try:
        with transaction.atomic():
            sub, problems = save_draft(actor=actor, form=form, park=park, period=period, values=values, lang=lang,
                                       reason=reason)
            problems = [p for p in problems if not missing_evidence(sub.version.definition, p)]
            if problems:
                raise ValuesError(problems)
            if submit_it:
                sub = submit(actor=actor, submission_id=sub.pk, lang=lang, reason=reason)
    except ValuesError as exc:
        result.errors.extend(result.locate(p) for p in exc.problems)
        result.errors.sort(key=result.order)
        return result
    except CarbonParkError as exc:
        return _file_error(result, exc.error, lang, field=exc.field, **exc.params)
    result.stored, result.submission = True, sub
    return result
