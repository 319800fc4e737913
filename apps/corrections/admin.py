"""The portal's corrections (R-9.3.2.2, R-9.3.2.3): the park's requests, a request form with evidence, and
approve/reject buttons (POST, CSRF) for those the seam lets decide. Every write is a service call."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from apps.accounts import access
from apps.accounts.access import Action
from apps.accounts.portal import NOBODY, PortalAdmin
from apps.core.errors import CarbonParkError
from apps.corrections import selectors, services
from apps.corrections.models import Correction
from apps.sources.models import DataSource


class AwaitingFilter(admin.SimpleListFilter):
    title = _("awaiting your approval")
    parameter_name = "awaiting"

    def lookups(self, request, model_admin):
        return [("1", _("yes"))]

    def queryset(self, request, queryset):
        if self.value() == "1":
            return queryset.filter(pk__in=selectors.awaiting(request.user).values("pk"))
        return queryset


class RequestForm(forms.Form):
    source = forms.ModelChoiceField(queryset=DataSource.objects.none(), label=_("data source"))
    data_code = forms.CharField(label=_("data code"), required=False, max_length=40,
                                help_text=_("may be left empty when the source has one data code"))
    start = forms.CharField(label=_("from (inclusive)"), max_length=40, help_text="YYYY-MM-DD HH:MM:SS")
    end = forms.CharField(label=_("to (inclusive)"), max_length=40,
                          help_text=_("the same as the start for one reading"))
    kind = forms.ChoiceField(label=_("kind"), choices=Correction.Kind.choices)
    amount = forms.CharField(label=_("new value or factor"), max_length=40)
    reason = forms.CharField(label=_("reason"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)
    evidence = forms.FileField(label=_("evidence (PDF, PNG or JPEG)"), required=False)


@admin.register(Correction)
class CorrectionAdmin(PortalAdmin):
    """Requests are made with the form of ``request/`` and decided with the buttons of the detail page; a
    correction itself is never edited or deleted here."""

    add_action = NOBODY
    change_action = NOBODY
    delete_action = NOBODY
    list_display = ["id", "source", "data_item", "start", "end", "change", "state", "requested_by_label",
                    "requested_at", "revised_count"]
    list_filter = [AwaitingFilter, "state"]
    list_select_related = ["source", "data_item"]
    readonly_fields = ["park", "source", "data_item", "start", "end", "kind", "new_value", "factor", "reason",
                       "readings_in_range", "requested_by_label", "requested_at", "state", "decided_by_label",
                       "decided_at", "comment", "applied_at", "revised_count", "evidence_list"]
    fields = readonly_fields
    change_form_template = "admin/corrections/correction/change_form.html"
    change_list_template = "admin/corrections/correction/change_list.html"

    @admin.display(description=_("change"))
    def change(self, obj):
        return f"× {obj.factor:g}" if obj.kind == Correction.Kind.FACTOR else f"= {obj.new_value:g}"

    @admin.display(description=_("evidence"))
    def evidence_list(self, obj):
        rows = [(reverse("admin:corrections_correction_evidence", args=[obj.pk, e.pk]), e.original_name, e.sha256)
                for e in obj.evidence.all()]
        return format_html_join(mark_safe("<br>"), '<a href="{}">{}</a> (SHA-256 {})', rows) or "—"

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("request/", wrap(self.request_view), name="corrections_correction_request"),
            path("<path:object_id>/decide/", wrap(self.decide_view), name="corrections_correction_decide"),
            path("<path:object_id>/evidence/<int:evidence_id>/", wrap(self.evidence_view),
                 name="corrections_correction_evidence"),
            *super().get_urls(),
        ]

    def may_request(self, request) -> bool:
        return bool(access.park_ids(request.user, Action.MODIFY) is None or access.park_ids(request.user,
                                                                                            Action.MODIFY))

    def may_decide(self, request, obj) -> bool:
        user = request.user
        return obj.state == Correction.State.REQUESTED and obj.requested_by_id != user.pk and \
            access.check(user, Action.APPROVE, obj.park_id, owner=obj.requested_by)

    def changelist_view(self, request, extra_context=None):
        waiting = selectors.awaiting(request.user).count()
        extra = {"may_request": self.may_request(request), "awaiting_count": waiting, **(extra_context or {})}
        return super().changelist_view(request, extra)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        extra = {"may_decide": obj is not None and self.may_decide(request, obj),
                 "revisions": list(obj.revisions.order_by("ts")[:50]) if obj is not None else [],
                 **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    def request_view(self, request):
        if not self.may_request(request):
            raise PermissionDenied
        form = RequestForm(request.POST or None, request.FILES or None)
        form.fields["source"].queryset = access.restrict(DataSource.objects.order_by("source_id"), request.user,
                                                         Action.MODIFY)
        if request.method == "POST" and form.is_valid():
            d = form.cleaned_data
            amount = {"factor" if d["kind"] == Correction.Kind.FACTOR else "new_value": d["amount"]}
            try:
                c = services.request_correction(
                    actor=request.user, source_id=d["source"].source_id, data_code=d["data_code"] or None,
                    start=d["start"], end=d["end"], reason=d["reason"],
                    evidence=[d["evidence"]] if d["evidence"] else [], **amount)
            except CarbonParkError as exc:
                form.add_error(None, f"{exc.error.code}: {exc.error.message(**exc.params)}")
            except access.AccessDenied:
                form.add_error("source", _("You may not request corrections in this park."))
            else:
                messages.success(request, _("Correction #%(id)s requested; the park's approvers are told.")
                                 % {"id": c.pk})
                return HttpResponseRedirect(reverse("admin:corrections_correction_change", args=[c.pk]))
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "form": form,
                   "title": _("Request a correction")}
        return TemplateResponse(request, "admin/corrections/correction/request.html", context)

    def evidence_view(self, request, object_id, evidence_id):
        """An evidence file, to whoever may view its correction (a download: never rendered in the portal's
        origin, whatever its bytes)."""
        obj = self.get_object(request, unquote(object_id))  # restricted to what the user may view
        evidence = obj.evidence.filter(pk=evidence_id).first() if obj is not None else None
        if evidence is None:
            raise Http404
        return FileResponse(evidence.file.open("rb"), as_attachment=True, filename=evidence.original_name,
                            content_type=evidence.content_type)

    def decide_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = self.get_object(request, unquote(object_id))  # restricted to what the user may view
        if obj is None:
            raise Http404
        approve = request.POST.get("decision") == "approve"
        try:
            (services.approve_correction if approve else services.reject_correction)(
                actor=request.user, correction_id=obj.pk, comment=request.POST.get("comment", ""))
        except access.AccessDenied:
            raise PermissionDenied from None
        except CarbonParkError as exc:
            if exc.http_status == 403:
                raise PermissionDenied from None
            messages.error(request, f"{exc.error.code}: {exc.error.message(**exc.params)}")
        else:
            messages.success(request, _("Correction approved; it is being applied.") if approve
                             else _("Correction rejected."))
        return HttpResponseRedirect(reverse("admin:corrections_correction_change", args=[obj.pk]))
