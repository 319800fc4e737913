"""Portal pages for Excel in and out (R-7.3.4): a form's template to download and a filled one to import (the
error report as a table of sheet, row, column and message, or the values read and a confirm button), and the
exports page (kind, format, park, time range → a zip with its manifest). Thin adapters: every right through the
access seam, every write through apps.entry.services.imports and apps.entry.exports."""

from __future__ import annotations

import secrets

from django import forms
from django.contrib import admin, messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from apps.accounts import access
from apps.accounts.access import Action
from apps.core import exports as core_exports
from apps.core.errors import CarbonParkError
from apps.entry import excel, selectors
from apps.entry import exports as entry_exports
from apps.entry.api.excel import XLSX, check_file
from apps.entry.excel import layout
from apps.entry.services.imports import import_file

PENDING_SECONDS = 1800  # a checked file waits this long for its confirmation
MAX_BYTES = excel.reader.MAX_BYTES


def _lang() -> str:
    return get_language() or "zh-hans"


def _context(request, title, **extra) -> dict:
    return {**admin.site.each_context(request), "title": title, **extra}


def _form_or_404(request, code):
    form = selectors.forms_for(request.user).filter(code=code).first() if len(code) <= 63 else None
    if form is None or form.current_number is None:
        raise Http404
    return form


def entry_parks(request, form):
    """Parks where the user may enter data with ``form`` (its own park, or any for a platform form)."""
    parks = access.parks(request.user, Action.ENTER).order_by("code")
    return parks.filter(pk=form.park_id) if form.park_id else parks


def excel_list_view(request):
    """The forms the user may read, each with its template and (where the user may enter) the import."""
    rows = [(f, f.park_id is None or access.check(request.user, Action.ENTER, f.park_id))
            for f in selectors.forms_for(request.user).filter(current_number__isnull=False)
            .select_related("park").order_by("code")]
    return TemplateResponse(request, "admin/entry/excel_list.html",
                            _context(request, _("Excel templates and import"), rows=rows))


def template_view(request, code):
    form = _form_or_404(request, code)
    version = form.versions.order_by("-number").first()
    response = HttpResponse(excel.template(version), content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="{form.code}-v{version.number}.xlsx"'
    return response


class ImportForm(forms.Form):
    file = forms.FileField(label=_("filled template (.xlsx)"))
    park = forms.ModelChoiceField(queryset=None, label=_("park"))
    period = forms.DateField(label=_("period start"), widget=forms.DateInput(attrs={"type": "date"}),
                             help_text=_("the first day of the month, quarter or year the file covers"))

    def __init__(self, *args, parks, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["park"].queryset = parks
        if parks.count() == 1:
            self.fields["park"].initial = parks.first()


def _labelled(version, values: dict) -> list[dict]:
    """The values read, as rows of (sheet, label, value) for the confirmation table."""
    out = []
    for s in layout.sheets(version.definition):
        labels = {f["key"]: layout.labels(f)[0 if _lang().startswith("zh") else 1] + layout.unit_suffix(f)
                  for f in s.fields}
        if s.repeat:
            for i, row in enumerate(values.get(s.section["key"]) or [], 1):
                out.append({"sheet": s.name, "label": f"#{i}",
                            "value": "; ".join(f"{labels.get(k, k)} = {v}" for k, v in row.items())})
        else:
            out.extend({"sheet": s.name, "label": labels[f["key"]], "value": values[f["key"]]}
                       for f in s.fields if f["key"] in values)
    return out


def import_view(request, code):
    """Upload a filled template: checked first (nothing stored), then stored as a draft or submitted on
    confirmation. The confirmation refers to the checked file kept in the cache for this user only."""
    form = _form_or_404(request, code)
    parks = entry_parks(request, form)
    may_enter = parks.exists()
    version = form.versions.order_by("-number").first()
    upload = ImportForm(request.POST or None, request.FILES or None, parks=parks)
    context = _context(request, _("Excel: %(name)s") % {"name": form}, form_obj=form, version=version,
                       upload=upload, may_enter=may_enter, report=None, values=None)
    if request.method == "POST":
        if not may_enter:
            raise PermissionDenied
        if request.POST.get("confirm"):
            return _confirm(request, form, parks, context)
        if upload.is_valid():
            f = upload.cleaned_data["file"]
            if f.size > MAX_BYTES:
                context["report"] = [excel.reader._entry(excel.reader.errors.E8402, _lang(), size=f.size,
                                                         limit=MAX_BYTES)]
                return TemplateResponse(request, "admin/entry/excel_import.html", context, status=400)
            data = f.read()
            result, number = check_file(form, data, _lang())
            if result.errors:
                context["report"] = result.errors
                return TemplateResponse(request, "admin/entry/excel_import.html", context, status=400)
            token = secrets.token_urlsafe(16)
            cache.set(_key(request, token), {"data": data, "name": (f.name or "")[:100], "form": form.code},
                      PENDING_SECONDS)
            checked = form.versions.get(number=number)
            context.update(values=_labelled(checked, result.values), token=token,
                           park=upload.cleaned_data["park"], period=upload.cleaned_data["period"].isoformat(),
                           file_name=f.name)
    return TemplateResponse(request, "admin/entry/excel_import.html", context)


def _key(request, token: str) -> str:
    return f"entry:excel-import:{request.user.pk}:{token}"


def _confirm(request, form, parks, context):
    token = request.POST.get("token", "")
    pending = cache.get(_key(request, token)) if token.replace("-", "").replace("_", "").isalnum() else None
    park = parks.filter(pk=request.POST.get("park") if str(request.POST.get("park", "")).isdigit() else None).first()
    if pending is None or pending.get("form") != form.code or park is None:
        messages.error(request, _("The checked file has expired or is not yours: upload it again."))
        return HttpResponseRedirect(reverse("admin:entry_excel_import", args=[form.code]))
    result = import_file(actor=request.user, form=form, park=park, period=request.POST.get("period", ""),
                         file=pending["data"], submit_it=request.POST.get("confirm") == "submit", lang=_lang(),
                         file_name=pending["name"])
    if result.errors:
        context["report"] = result.errors
        return TemplateResponse(request, "admin/entry/excel_import.html", context, status=400)
    cache.delete(_key(request, token))
    sub = result.submission
    messages.success(request, (_("Imported: submission #%(id)s submitted for review.") if sub.state == "submitted"
                               else _("Imported: submission #%(id)s saved as a draft.")) % {"id": sub.pk})
    return HttpResponseRedirect(reverse("admin:entry_excel_import", args=[form.code]))


# --- exports ------------------------------------------------------------------------------------------------

KIND_LABELS = {"submissions": _("submissions"), "readings": _("readings"), "corrections": _("corrections"),
               "revisions": _("revisions"), "history": _("history (audit trail)"), "forms": _("form versions"),
               "indicators": _("quality indicators")}


class ExportForm(forms.Form):
    kind = forms.ChoiceField(label=_("what"), choices=[(k, KIND_LABELS.get(k, k)) for k in entry_exports.KINDS])
    file_format = forms.ChoiceField(label=_("format"), choices=[(f, f.upper()) for f in core_exports.FORMATS])
    park = forms.ModelChoiceField(queryset=None, label=_("park"), required=False, empty_label=_("all my parks"))
    since = forms.DateTimeField(label=_("from"), required=False, help_text=_("local time; empty: from the start"),
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(label=_("to"), required=False,
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    def __init__(self, *args, parks, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["park"].queryset = parks


def may_export(user) -> bool:
    ids = access.park_ids(user, Action.EXPORT)
    return ids is None or bool(ids)


def exports_view(request):
    """Kind, format, park and time range → the zip with its manifest (``manage.py verify_export`` checks it);
    the export is recorded on the audit trail by the service."""
    if not may_export(request.user):
        raise PermissionDenied
    parks = access.parks(request.user, Action.EXPORT).order_by("code")
    form = ExportForm(request.POST or None, parks=parks)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        params = {}
        if d["park"] is not None:
            params["park"] = d["park"].code
        names = ("start", "end") if d["kind"] == "readings" else ("since", "until")
        for name, value in zip(names, (d["since"], d["until"]), strict=True):
            if value is not None:
                params[name] = value.isoformat()
        try:
            result = entry_exports.export(request.user, d["kind"], d["file_format"], params)
        except CarbonParkError as exc:
            form.add_error(None, f"{exc.error.code}: {exc.error.message(_lang(), **exc.params)}")
        else:
            return FileResponse(result.file, as_attachment=True, filename=result.name,
                                content_type="application/zip")
    return TemplateResponse(request, "admin/entry/exports.html",
                            _context(request, _("Exports"), form=form), status=400 if form.errors else 200)
