"""The visual form designer in the portal (R-7.3.1, issue #10 item 2): a page on the Form admin
(``/entry/form/<id>/design/``) and its three JSON endpoints: check a draft, save it, publish it.

The page is static JavaScript (static/entry/designer/) over the definition format of docs/form-definitions.md;
the server stays the judge: every definition the page sends goes through ``check_definition`` (codes E82xx, each
with the path the page shows it at), and saving and publishing through ``services``. Only those who may MANAGE
the form's park (system administrators for the platform's default forms) reach any of it: 403 otherwise.
"""

from __future__ import annotations

import re

import orjson
from django.core.exceptions import PermissionDenied
from django.db.models import F, Prefetch, Q
from django.http import Http404, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from apps.accounts import access
from apps.accounts.access import Action
from apps.catalog.models import DataItem, EnumValue
from apps.core.errors import CarbonParkError
from apps.entry import errors, selectors, services
from apps.entry.catalog import catalog_lookup
from apps.entry.definitions import FIELD_TYPES, FORMAT, PERIODS, Problem, check_definition
from apps.entry.models import Form

ID_RE = re.compile(r"[0-9]{1,18}")  # ASCII digits within a bigint
MAX_BODY = 1_000_000  # bytes: a definition of 1 000 fields is about 200 kB


class Refused(Exception):
    """The form cannot be designed by this user: E8291 (no such form) or E8292 (not an administrator of its
    park). The page answers with Django's 404 or 403 page, the JSON views with the code."""

    def __init__(self, error, **params):
        super().__init__(error.code)
        self.error, self.params = error, params


def view(model_admin, func, method: str):
    """``func(model_admin, request, object_id)`` as a portal view (signed in, CSRF-protected) for ``method``;
    the JSON views (``method`` POST) answer a refusal with its code, the page with Django's 404 or 403."""
    from django.views.decorators.http import require_http_methods

    @require_http_methods([method])
    def wrapped(request, object_id):
        try:
            return func(model_admin, request, object_id)
        except Refused as exc:
            if method == "GET":
                if exc.error.http_status == 404:
                    raise Http404(exc.error.message(_lang(), **exc.params)) from exc
                raise PermissionDenied(exc.error.message(_lang(), **exc.params)) from exc
            return JsonResponse({"ok": False, "problems": _problems([Problem(exc.error, "", exc.params)])},
                                status=exc.error.http_status)

    return model_admin.admin_site.admin_view(wrapped)


def _lang() -> str:
    return get_language() or "zh-hans"


def managed_form(model_admin, request, object_id):
    """The form ``object_id`` if the user may MANAGE its park (the platform's default forms: system
    administrators), through the seam (apps/accounts/access.py); ``Refused`` otherwise: E8291 for an id that
    names no form (not a number, past 64 bits, unknown), E8292 for a form of a park the user does not administer
    (another park's administrator, a clerk of the same park). The park does not change here, so the form as it
    is and as it would be are in the same park."""
    shown = object_id[:40]
    if not ID_RE.fullmatch(object_id):
        raise Refused(errors.E8291, id=shown)
    form = Form.objects.select_related("park").filter(pk=int(object_id)).first()
    if form is None:
        raise Refused(errors.E8291, id=shown)
    if not access.check(request.user, Action.MANAGE, form.park_id):
        raise Refused(errors.E8292, code=form.code)
    return form


def catalog_groups(park) -> list[dict]:
    """The active items a form of ``park`` may name (the standard's and the park's own), grouped by minor class
    in code order, with what the designer shows and what the preview needs (type, unit, step, choices)."""
    scope = Q(park__isnull=True) | Q(park=park) if park is not None else Q(park__isnull=True)
    values = Prefetch("enumeration__values", queryset=EnumValue.objects.order_by("order", "code"))
    items = (DataItem.objects.filter(scope, is_active=True).select_related("minor", "minor__parent", "enumeration")
             .prefetch_related(values).order_by(F("table").asc(nulls_last=True), "minor__code", "code"))
    groups: dict[str, dict] = {}
    for item in items:
        g = groups.setdefault(item.minor_id, {"code": item.minor_id, "name_zh": item.minor.name_zh,
                                              "name_en": item.minor.name_en, "items": []})
        g["items"].append({
            "code": item.code, "name_zh": item.name_zh, "name_en": item.name_en, "data_type": item.data_type,
            "unit": item.unit, "precision": item.precision, "table": item.table, "section": item.section,
            "own": item.park_id is not None,
            "options": [{"value": v.code, "label": {"zh": v.label_zh, **({"en": v.label_en} if v.label_en else {})}}
                        for v in item.enumeration.values.all()] if item.enumeration_id else [],
        })
    return list(groups.values())


def strings() -> dict:
    """The page's texts in the user's language (translated in locale/zh_Hans like every other string)."""
    return {
        "design": _("Design"), "preview": _("Preview"), "json": _("JSON"), "catalog": _("Catalog"),
        "search": _("Search code or name"), "free_fields": _("Free fields"), "form": _("Form"),
        "title_zh": _("Title (Chinese)"), "title_en": _("Title (English)"), "period": _("Period"),
        "constraints": _("Constraints (JSON list)"), "add_section": _("Add section"),
        "add_repeat": _("Add repeating section"), "new_section": _("New section"), "new_field": _("New field"),
        "drop_here": _("Drag fields here from the catalog"), "properties": _("Properties"),
        "nothing_selected": _("Select a field or a section to edit its properties."),
        "key": _("Key"), "label_zh": _("Label (Chinese)"), "label_en": _("Label (English)"),
        "help_zh": _("Help (Chinese)"), "help_en": _("Help (English)"), "required": _("Required"),
        "min": _("Minimum"), "max": _("Maximum"), "step": _("Step (precision)"), "unit": _("Unit"),
        "max_length": _("Maximum length"), "options": _("Options (one a line: value|中文|English)"),
        "visible_if": _("Visible if (JSON Logic)"), "calc": _("Calculated as (JSON Logic)"),
        "unique": _("Unique on the platform"), "repeat_min": _("Rows at least"), "repeat_max": _("Rows at most"),
        "repeating": _("repeating"), "check": _("Check"), "save": _("Save draft"), "publish": _("Publish"),
        "saved": _("Draft saved."), "checked_ok": _("No problems found."),
        "published": _("Published version %(number)s, SHA-256 %(hash)s"),
        "problems": _("Problems"), "not_json": _("Not valid JSON"), "delete": _("Delete"), "up": _("Up"),
        "down": _("Down"), "add": _("Add"), "add_row": _("Add row"), "remove_row": _("Remove row"),
        "item": _("Catalog item"), "type": _("Type"), "calculated": _("calculated"),
        "unsaved": _("Unsaved changes"), "request_failed": _("The request failed (HTTP %(status)s)."),
        "type_number": _("number"), "type_enum": _("choice"), "type_text": _("text"), "type_date": _("date"),
        "type_datetime": _("date and time"), "type_attachment": _("attachment"),
        "period_day": _("day"), "period_month": _("month"), "period_quarter": _("quarter"), "period_year": _("year"),
        "condition": _("Visibility"), "cond_show_when": _("Show only when"), "cond_field": _("Field"),
        "cond_if": _("if"), "cond_op": _("Comparison"), "cond_value": _("Value"),
        "cond_always": _("(always shown)"),
        "cond_advanced": _("(an advanced condition)"), "cond_json": _("Advanced: the condition as JSON Logic"),
        "cond_is_advanced": _("This condition is more than one comparison: edit it as JSON Logic below."),
        "op_0": _("equals"), "op_1": _("does not equal"), "op_2": _("is greater than"), "op_3": _("is at least"),
        "op_4": _("is less than"), "op_5": _("is at most"),
        "current": _("published version %(number)s · SHA-256 %(hash)s"),
        "form_level": _("Form-wide"), "example": _("Example:"), "select": _("(choose)"), "preview_note":
            _("The form as a clerk will see it: conditions and calculated fields work as when filling."),
    }


def design_view(model_admin, request, object_id):
    form = managed_form(model_admin, request, object_id)
    definition = form.definition or {"format": FORMAT, "period": "month",
                                      "title": {"zh": form.name_zh, **({"en": form.name_en} if form.name_en else {})},
                                      "sections": []}
    current = selectors.current_version(form)
    base = reverse("admin:entry_form_design", args=[form.pk])
    config = {
        "definition": definition, "catalog": catalog_groups(form.park), "fieldTypes": list(FIELD_TYPES),
        "periods": list(PERIODS), "lang": "en" if _lang().startswith("en") else "zh", "strings": strings(),
        "urls": {"check": base + "check/", "save": base + "save/", "publish": base + "publish/"},
        "current": {"number": current.number, "hash": current.content_hash} if current else None,
    }
    context = {**model_admin.admin_site.each_context(request), "opts": model_admin.model._meta, "form_obj": form,
               "title": _("Design form %(code)s") % {"code": form.code}, "config": config, "current": current}
    return TemplateResponse(request, "admin/entry/designer.html", context)


def _problems(problems: list[Problem]) -> list[dict]:
    return [p.as_dict(_lang()) for p in problems]


def _refused(detail: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"ok": False, "problems": _problems([Problem(errors.E8201, "", {"detail": detail})])},
                        status=status)


def read_definition(request):
    """(definition, None) from a JSON body ``{"definition": …}``, or (None, the coded answer): a body larger
    than ``MAX_BODY`` is not read; what orjson cannot decode (deeper than 1 024 levels, integers past 64 bits,
    invalid UTF-8, lone surrogates) is E8201; so are NUL characters and non-finite numbers (check_definition)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = MAX_BODY + 1
    if length > MAX_BODY:
        return None, _refused(f"the body is larger than {MAX_BODY} bytes", 413)
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        return None, _refused(f"not JSON: {str(exc)[:120]}")
    if not isinstance(body, dict) or "definition" not in body:
        return None, _refused('a JSON object {"definition": …} is expected')
    return body["definition"], None


def check_view(model_admin, request, object_id):
    """Every problem of the posted draft in this form's park (200 with ``ok`` and ``problems``)."""
    form = managed_form(model_admin, request, object_id)
    definition, refused = read_definition(request)
    if refused:
        return refused
    problems = check_definition(definition, catalog_lookup(form.park))
    return JsonResponse({"ok": not problems, "problems": _problems(problems)})


def save_view(model_admin, request, object_id):
    form = managed_form(model_admin, request, object_id)
    definition, refused = read_definition(request)
    if refused:
        return refused
    try:
        saved = services.save_draft(actor=request.user, form=form, definition=definition)
    except services.DefinitionError as exc:
        return JsonResponse({"ok": False, "problems": _problems(exc.problems)}, status=400)
    except CarbonParkError as exc:
        return JsonResponse({"ok": False, "problems": [_error(exc)]}, status=exc.http_status)
    return JsonResponse({"ok": True, "updated_at": saved.updated_at.isoformat()})


def _error(exc: CarbonParkError) -> dict:
    return {"code": exc.error.code, "path": exc.field or "", "message": exc.error.message(_lang(), **exc.params),
            "messages": exc.error.messages(**exc.params)}


def publish_view(model_admin, request, object_id):
    """Publish the saved draft: the version's number and content hash."""
    form = managed_form(model_admin, request, object_id)
    try:
        version = services.publish(actor=request.user, form=form)
    except services.DefinitionError as exc:
        return JsonResponse({"ok": False, "problems": _problems(exc.problems)}, status=400)
    except CarbonParkError as exc:
        return JsonResponse({"ok": False, "problems": [_error(exc)]}, status=exc.http_status)
    return JsonResponse({"ok": True, "number": version.number, "content_hash": version.content_hash})
