"""The portal's audit browser and the combined history page of objects (issue #8 deliverable 5).

- ``AuditTrailAdmin``: the "audit trail" page lists action records and row versions together, filtered by
  who, what, when, park and object type, with CSV and XLSX exports; each action record opens read-only
  with its chain fields.
- ``AuditHistoryMixin``: put it first in a ModelAdmin's bases and the object's "history" page shows the same
  timeline for that object.

Adapters only: rows come from apps.accounts.audit (scoped by Action.AUDIT through the access seam), an
export is recorded by apps.accounts.services.record_audit_export.
"""

from __future__ import annotations

import csv
import io

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from apps.accounts import access, audit, services
from apps.accounts.access import Action
from apps.accounts.portal import PortalAdmin
from apps.core.admin import ReadOnlyAdmin
from apps.core.exports import neutralise
from apps.core.models import AuditEntry

PAGE_SIZE = 50
XLSX_MAX_ROWS = 200_000  # far below Excel's 1 048 576; a larger export is a CSV


def may_audit(user) -> bool:
    ids = access.park_ids(user, Action.AUDIT)
    return ids is None or bool(ids)


class TimelineForm(forms.Form):
    who = forms.CharField(label=_("who"), required=False, max_length=150)
    what = forms.CharField(label=_("action"), required=False, max_length=64,
                           help_text=_("part of an action, e.g. membership, auth.login, version.changed"))
    text = forms.CharField(label=_("object or reason"), required=False, max_length=200)
    object_type = forms.ChoiceField(label=_("object type"), required=False)
    park = forms.ChoiceField(label=_("park"), required=False)
    since = forms.DateTimeField(label=_("from"), required=False,
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(label=_("to"), required=False,
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["object_type"].choices = [("", _("every type")), *audit.object_types()]
        parks = access.parks(user, Action.AUDIT).order_by("code").values_list("code", "name_zh")
        self.fields["park"].choices = [("", _("every park")), *[(c, f"{c} {n}") for c, n in parks]]

    def timeline_filter(self, **fixed) -> audit.TimelineFilter | None:
        """The filter asked for; None when the form is wrong (e.g. a park the user may not audit)."""
        if self.is_bound and not self.is_valid():
            return None
        data = self.cleaned_data if self.is_bound else {}
        values = {name: data.get(name) or ("" if name not in ("since", "until") else None)
                  for name in ("who", "what", "text", "object_type", "park", "since", "until")}
        values.update(fixed)
        return audit.TimelineFilter(**values)


def _query_without(request, *names) -> str:
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()


class AuditTrailAdmin(PortalAdmin, ReadOnlyAdmin):
    """The audit trail as one page (R-7.3.2, R-9.3.2.3): scoped to the parks the user may audit (the seam's
    PortalAdmin with AUDIT as the action that shows rows: queryset, menu and each record's page)."""

    view_action = Action.AUDIT
    list_display = ["at", "actor_label", "action", "object_type", "object_repr", "park_code"]
    fields = ["at", "actor_label", "actor", "action", "object_type", "object_id", "object_repr", "park_code",
              "before", "after", "reason", "seq", "prev_hash", "hash"]
    readonly_fields = fields

    def get_urls(self):
        return [path("export/", self.admin_site.admin_view(self.export_view), name="core_auditentry_export"),
                *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        query = request.GET
        picked = request.session.get(access.SESSION_PARK) if not query else None
        if picked is not None:  # the park switcher's park, until the user asks for something else
            from apps.accounts.models import Park

            code = Park.objects.filter(pk=picked).values_list("code", flat=True).first()
            query = {"park": code} if code else query
        form = TimelineForm(query or None, user=request.user)
        filters = form.timeline_filter()
        page = (audit.timeline(request.user, filters, cursor=request.GET.get("cursor"), limit=PAGE_SIZE)
                if filters is not None else audit.TimelinePage([], None))
        context = {
            **self.admin_site.each_context(request), "opts": self.opts, "title": _("Audit trail"),
            "form": form, "page": page, "rows": page.rows, "show_park": True, "show_object": True,
            "next_query": (_query_without(request, "cursor") + "&" if request.GET else "") + "cursor=",
            "export_query": _query_without(request, "cursor"),
            "may_export": bool(access.park_ids(request.user, Action.EXPORT) is None
                               or access.park_ids(request.user, Action.EXPORT)),
            "entry_url": "admin:core_auditentry_change",
        }
        return TemplateResponse(request, "accounts/audit/browser.html", context)

    def export_view(self, request):
        """CSV or XLSX of every row the filters select in parks the user may audit and export."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        ids = access.park_ids(request.user, Action.EXPORT)
        if ids is not None and not ids:
            raise PermissionDenied
        form = TimelineForm(request.GET or None, user=request.user)
        filters = form.timeline_filter()
        if filters is None:
            raise PermissionDenied
        file_format = request.GET.get("format", "csv")
        if file_format not in ("csv", "xlsx"):
            raise Http404
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        name = f"audit-trail-{filters.park or 'all'}-{stamp}.{file_format}"
        tz = timezone.get_current_timezone()
        headers = [str(label) for _n, label in audit.EXPORT_COLUMNS]
        if file_format == "csv":
            services.record_audit_export(actor=request.user, filters=filters.as_dict(), file_format="csv")
            rows = audit.iter_timeline(request.user, filters)
            response = StreamingHttpResponse(_csv_lines(headers, rows, tz), content_type="text/csv; charset=utf-8")
        else:
            from openpyxl import Workbook

            book = Workbook(write_only=True)
            sheet = book.create_sheet(_t("Audit trail")[:31])
            sheet.append(headers)
            count = 0
            for row in audit.iter_timeline(request.user, filters, cap=XLSX_MAX_ROWS):
                sheet.append([neutralise(v) for v in audit.export_values(row, tz)])
                count += 1
            buffer = io.BytesIO()
            book.save(buffer)
            services.record_audit_export(actor=request.user, filters=filters.as_dict(), file_format="xlsx",
                                         rows=count)
            response = HttpResponse(buffer.getvalue(), content_type="application/vnd.openxmlformats-officedocument."
                                                                    "spreadsheetml.sheet")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


def _csv_lines(headers, rows, tz):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers)
    yield "\ufeff" + buffer.getvalue()  # the BOM makes Excel read UTF-8 (Chinese names)
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([neutralise(v) for v in audit.export_values(row, tz)])
        yield buffer.getvalue()


def _park_of_entry(entry: AuditEntry):
    from apps.accounts.models import Park

    if not entry.park_code:
        return None
    return Park.objects.filter(code=entry.park_code).values_list("pk", flat=True).first()


admin.site.register(AuditEntry, AuditTrailAdmin)


class AuditHistoryMixin:
    """First in a ModelAdmin's bases: the object's "history" page shows its row versions and action records
    together (R-7.3.2), for users who may audit the object's park (Action.AUDIT)."""

    audit_history_page_size = 100

    def history_view(self, request, object_id, extra_context=None):
        model = self.model
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, model._meta, object_id)
        if not access.check_object(request.user, Action.AUDIT, obj):
            raise PermissionDenied
        f = audit.TimelineFilter(object_type=model._meta.label_lower, object_id=str(obj.pk))
        page = audit.timeline(request.user, f, cursor=request.GET.get("cursor"), limit=self.audit_history_page_size)
        opts = model._meta
        context = {
            **self.admin_site.each_context(request), "opts": opts, "object": obj,
            "title": _("Change history: %s") % obj, "subtitle": None, "module_name": str(opts.verbose_name_plural),
            "page": page, "rows": page.rows, "show_park": False, "show_object": False,
            "next_query": "cursor=", "entry_url": "admin:core_auditentry_change",
            **(extra_context or {}),
        }
        return TemplateResponse(request, "accounts/audit/object_history.html", context)

