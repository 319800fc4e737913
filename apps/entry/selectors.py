"""Reads of forms and their published versions, scoped through ``apps.accounts.access`` (R-7.3.1, R-7.3.3).

The platform's default forms (no park) are shared: every signed-in principal may read them. A park's forms are
read by its members (VIEW: viewers, clerks, reviewers …); drafts are for those who may MANAGE the park."""

from __future__ import annotations

from django.db.models import OuterRef, Q, QuerySet, Subquery

from apps.accounts import access
from apps.accounts.access import Action
from apps.entry.models import Form, FormVersion, Submission


def forms_for(principal, action: Action = Action.VIEW, *, active_only: bool = True) -> QuerySet[Form]:
    """Forms ``principal`` may ``action``, each annotated with ``current_number``: its latest published version's
    number (None while unpublished). One query."""
    latest = FormVersion.objects.filter(form=OuterRef("pk")).order_by("-number").values("number")[:1]
    qs = Form.objects.select_related("park").annotate(current_number=Subquery(latest))
    if active_only:
        qs = qs.filter(is_active=True)
    return access.restrict(qs, principal, action)


def fillable_forms(principal, park) -> QuerySet[Form]:
    """Forms ``principal`` may fill in ``park`` (R-7.3.1.2): the park's own and the platform's defaults, active
    and published, when ``principal`` may ENTER there; none otherwise. Annotated like ``forms_for``."""
    if park is None or not access.check(principal, Action.ENTER, park):
        return Form.objects.none()
    park_id = getattr(park, "pk", park)
    return (forms_for(principal).filter(Q(park_id=park_id) | Q(park__isnull=True), current_number__isnull=False)
            .order_by("code"))


def versions_for(principal, action: Action = Action.VIEW) -> QuerySet[FormVersion]:
    return access.restrict(FormVersion.objects.select_related("form", "form__park"), principal, action)


def version(principal, code: str, number: int) -> FormVersion | None:
    """Version ``number`` of form ``code`` if ``principal`` may read it; None otherwise (unknown and not
    allowed look the same)."""
    return versions_for(principal).filter(form__code=code, number=number).first()


def current_version(form: Form) -> FormVersion | None:
    """The latest published version of ``form`` (unscoped: the caller has the form already)."""
    return form.versions.order_by("-number").first()


# --- submissions (R-7.3.1.2, R-7.3.2) --------------------------------------------------------------------


def submissions_for(principal, action: Action = Action.VIEW) -> QuerySet[Submission]:
    """Submissions in parks where ``principal`` may ``action``; one query with their form, version and park."""
    return access.restrict(Submission.objects.select_related("form", "version", "park"), principal, action)


def submission(principal, submission_id, action: Action = Action.VIEW) -> Submission | None:
    """One submission ``principal`` may ``action``, else None (unknown and another park's look the same)."""
    try:
        pk = int(submission_id)
    except (TypeError, ValueError, OverflowError):
        return None
    if not 0 < pk < 2**63:
        return None
    return submissions_for(principal, action).filter(pk=pk).first()


def fillable_form(principal, park, code) -> Form | None:
    """Form ``code`` if ``principal`` may fill it in ``park`` (R-7.3.1.2), else None."""
    if not isinstance(code, str) or len(code) > 63:
        return None
    return fillable_forms(principal, park).filter(code=code).first()


def versions_of(sub: Submission) -> list[tuple[int, object]]:
    """The versions of a submission, oldest first, numbered 1, 2, …: (number, historical record with
    ``values``, ``state``, ``history_date``, ``history_user``, ``history_change_reason``)."""
    records = sub.history.select_related("history_user").order_by("history_date", "history_id")
    return list(enumerate(records, 1))


def _flat(definition: dict, values: dict) -> dict[str, object]:
    out = {}
    for s in definition.get("sections") or []:
        if s.get("repeat") is not None:
            for i, row in enumerate(values.get(s["key"]) or []):
                for f in s["fields"]:
                    out[f"{s['key']}[{i}].{f['key']}"] = row.get(f["key"])
        else:
            for f in s["fields"]:
                out[f["key"]] = values.get(f["key"])
    return out


def _labels(definition: dict) -> dict[str, dict]:
    return {f["key"]: f.get("label") or {} for s in definition.get("sections") or [] for f in s.get("fields") or []}


def diff(sub: Submission, a: int, b: int) -> list[dict] | None:
    """Side by side, versions ``a`` and ``b`` of a submission (R-7.3.2): one row per field path present in
    either, ``{"path", "label", "a", "b", "changed"}``; None if either version does not exist."""
    versions = dict(versions_of(sub))
    if a not in versions or b not in versions:
        return None
    d = sub.version.definition
    fa, fb = _flat(d, versions[a].values or {}), _flat(d, versions[b].values or {})
    labels = _labels(d)
    rows = []
    for path in list(dict.fromkeys([*fa, *fb])):
        va, vb = fa.get(path), fb.get(path)
        if va is None and vb is None:
            continue
        rows.append({"path": path, "label": labels.get(path.rpartition(".")[2].split("[")[0], {}), "a": va, "b": vb,
                     "changed": va != vb})
    for key, name in (("state", "state"),):
        va, vb = getattr(versions[a], key), getattr(versions[b], key)
        rows.append({"path": f"@{name}", "label": {"zh": "状态", "en": "state"}, "a": va, "b": vb,
                     "changed": va != vb})
    return rows


def _pick(text: dict | None, lang: str) -> str:
    text = text or {}
    return (text.get("en") or text.get("zh") or "") if lang.startswith("en") else (text.get("zh") or text.get("en")
                                                                                    or "")


def _shown(f: dict, value, attachments: dict, lang: str) -> str:
    if value is None:
        return ""
    if f.get("type") == "enum":
        for o in f.get("options") or []:
            if o.get("value") == value:
                return f"{_pick(o.get('label'), lang)} ({value})"
    if f.get("type") == "attachment":
        a = attachments.get(str(value))
        return f"{a.original_name} (SHA-256 {a.sha256[:12]}…)" if a else f"#{value}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def rendered_values(sub: Submission, lang: str, values: dict | None = None) -> list[dict]:
    """The values of ``sub`` (or ``values``) laid out by the submission's own form version (R-7.3.1: old
    submissions render with their own version): sections with their title and either ``fields`` (label,
    value, unit) or, for a repeat section, ``columns`` and ``rows``."""
    d = sub.version.definition
    values = sub.values if values is None else values
    attachments = {str(a.pk): a for a in sub.attachments.all()}
    out = []
    for s in d.get("sections") or []:
        fields = s.get("fields") or []
        section = {"key": s["key"], "title": _pick(s.get("title"), lang), "repeat": s.get("repeat") is not None}
        if section["repeat"]:
            section["columns"] = [{"label": _pick(f.get("label"), lang), "unit": f.get("unit", "")} for f in fields]
            section["rows"] = [[_shown(f, (row or {}).get(f["key"]), attachments, lang) for f in fields]
                               for row in values.get(s["key"]) or []]
        else:
            section["fields"] = [{"key": f["key"], "label": _pick(f.get("label"), lang), "unit": f.get("unit", ""),
                                  "value": _shown(f, values.get(f["key"]), attachments, lang)} for f in fields
                                 if values.get(f["key"]) is not None]
        out.append(section)
    return out


def current_periods(forms) -> dict[int, str]:
    """Form pk -> the period (day, month, quarter, year) of its current version, for forms annotated with
    ``current_number`` (``forms_for``). One query."""
    wanted = Q(pk__in=[])
    for f in forms:
        if f.current_number is not None:
            wanted |= Q(form_id=f.pk, number=f.current_number)
    return dict(FormVersion.objects.filter(wanted).values_list("form_id", "definition__period"))


def default_pair(versions: list[tuple[int, object]]) -> tuple[int, int]:
    """The two versions a diff shows first: the latest, and the newest earlier one whose values differ from
    it (what changed last: a resubmission against the values it was returned with); else the one before."""
    if not versions:
        return 1, 1
    b, latest = versions[-1]
    for n, h in reversed(versions[:-1]):
        if (h.values or {}) != (latest.values or {}):
            return n, b
    return max(b - 1, 1), b
