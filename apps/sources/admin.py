from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from apps.accounts.audit_admin import AuditHistoryMixin
from apps.accounts.portal import NOBODY, PortalAdmin
from apps.core.admin import ReadOnlyAdmin, ServiceAdmin
from apps.quality import charts
from apps.sources.models import Command, DataSource, DeviceState, SourceKey, StateChange
from apps.sources.services import SOURCE_FIELDS, rotation, save_source
from apps.sources.services import keys as key_services
from apps.sources.services.commands import create_command


def _age(since):
    if since is None:
        return "—"
    days = (timezone.now() - since).days
    return _("%(days)d days") % {"days": days}


@admin.register(DataSource)
class DataSourceAdmin(AuditHistoryMixin, PortalAdmin, ServiceAdmin, SimpleHistoryAdmin):
    # "state", not "device_state": that name is the reverse one-to-one relation, which the list would show
    # as the raw DeviceState row ("1 offline") instead of the method below
    list_display = ["source_id", "name", "park", "kind", "protocol", "state", "last_seen", "key_age",
                    "expected_interval_s", "enabled", "encryption_required", "chart"]
    list_filter = ["park", "kind", "protocol", "enabled", "collection_method", "encryption_required",
                   "device_state__state"]
    search_fields = ["source_id", "name", "serial_number", "location"]
    filter_horizontal = ["data_items"]
    list_select_related = ["park", "device_state"]
    actions = ["provision_key", "rotate_key"]

    def get_queryset(self, request):
        # the key age column: the active key's activation time in the same query, not one per row
        active = SourceKey.objects.filter(source=OuterRef("pk"), state=SourceKey.State.ACTIVE).order_by("pk")
        return super().get_queryset(request).annotate(active_key_since=Subquery(active.values("activated_at")[:1]))

    def get_urls(self):
        return [path("<path:object_id>/chart/", self.admin_site.admin_view(self.chart_view),
                     name="sources_datasource_chart"), *super().get_urls()]

    @admin.display(description=_("chart"))
    def chart(self, obj):
        return format_html('<a href="{}">{}</a>', reverse("admin:sources_datasource_chart", args=[obj.pk]),
                           _("chart"))

    def chart_view(self, request, object_id):
        """The source's time series (issue #12 item 6): to whoever may view the source; another park's source
        answers 404 like an unknown one (get_object reads through the seam)."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None or not self.has_view_permission(request, obj):
            raise Http404
        rng = charts.chart_range(request.GET.get("range"))
        data = charts.source_chart(request.user, obj, rng)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "original": obj,
                   "title": _("Chart of %(source)s") % {"source": obj.source_id}, "chart": data,
                   "ranges": [(name, label, name == rng.name) for name, label in charts.range_labels()],
                   "rolled": [s for s in data["series"] if s["rollup"]], "chart_labels": charts.labels(),
                   "registers": [s for s in data["series"] if s["register"]]}
        return TemplateResponse(request, "admin/sources/datasource/chart.html", context)

    def save_via_service(self, request, obj, form, change):
        fields = {k: form.cleaned_data[k] for k in SOURCE_FIELDS if k in form.cleaned_data}
        saved = save_source(actor=request.user, source=obj if change else None,
                            data_items=list(form.cleaned_data.get("data_items", [])), **fields)
        obj.pk = saved.pk

    @admin.display(description=_("state"))
    def state(self, obj):
        st = getattr(obj, "device_state", None)
        if st is None:
            return DeviceState.State.UNKNOWN.label
        return f"{st.get_state_display()}{' · ' + str(_('silent')) if st.silent else ''}"

    @admin.display(description=_("last seen"))
    def last_seen(self, obj):
        st = getattr(obj, "device_state", None)
        return timezone.localtime(st.last_seen_at).strftime("%Y-%m-%d %H:%M:%S") if st and st.last_seen_at else "—"

    @admin.display(description=_("key age"))
    def key_age(self, obj):
        if hasattr(obj, "active_key_since"):  # annotated (the list): no active key is "—", not a query per row
            return _age(obj.active_key_since) if obj.active_key_since is not None else "—"
        key = obj.keys.filter(state=SourceKey.State.ACTIVE).first()
        return _age(key.activated_at) if key else "—"

    @admin.action(description=_("Provision a first encryption key (shown once)"), permissions=["change"])
    def provision_key(self, request, queryset):
        for source in queryset:
            try:
                key, material = key_services.provision_key(actor=request.user, source=source)
            except ValueError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            self.message_user(request, _("%(source)s: key %(key_id)s = %(material)s (base64; load it into the "
                                         "device now, it is not shown again)") % {
                "source": source.source_id, "key_id": key.key_id, "material": material}, messages.WARNING)

    @admin.action(description=_("Rotate the encryption key (sent to the device with rotate_key)"),
                  permissions=["change"])
    def rotate_key(self, request, queryset):
        for source in queryset:
            cmd = rotation.rotate_key(actor=request.user, source=source)
            self.message_user(request, _("%(source)s: rotate_key command %(cmd)s queued") % {
                "source": source.source_id, "cmd": cmd.cmd_id})


class CommandForm(forms.ModelForm):
    ttl_minutes = forms.IntegerField(label=_("expires after (minutes)"), initial=60, min_value=1, max_value=10080)

    class Meta:
        model = Command
        fields = ["source", "type", "params"]

    def clean_type(self):
        if self.cleaned_data["type"] == Command.Type.ROTATE_KEY:
            raise ValidationError(_("Use the data source's 'Rotate the encryption key' action."))
        return self.cleaned_data["type"]


@admin.register(Command)
class CommandAdmin(PortalAdmin):
    change_action = delete_action = NOBODY  # a command is sent once; its fate is the device's answer
    form = CommandForm
    list_display = ["created_at", "source", "type", "params_shown", "state", "published_at", "acknowledged_at",
                    "result", "message", "expires_at"]
    list_filter = ["state", "type"]
    search_fields = ["cmd_id", "source__source_id"]
    autocomplete_fields = ["source"]
    list_select_related = ["source"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Command._meta.fields] if obj else []

    @admin.display(description=_("parameters"))
    def params_shown(self, obj):
        return obj.params

    def save_model(self, request, obj, form, change):
        if change:
            return
        cmd = create_command(actor=request.user, source=obj.source, type=obj.type, params=obj.params,
                             ttl=timedelta(minutes=form.cleaned_data["ttl_minutes"]))
        obj.pk = cmd.pk


@admin.register(SourceKey)
class SourceKeyAdmin(PortalAdmin, ReadOnlyAdmin):
    list_display = ["key_id", "source", "park", "state", "age", "created_at", "activated_at", "retired_at",
                    "decrypt_until"]
    list_filter = ["state"]
    search_fields = ["key_id", "source__source_id"]
    exclude = ["sealed"]

    @admin.display(description=_("age"))
    def age(self, obj):
        return _age(obj.activated_at or obj.created_at)


@admin.register(DeviceState)
class DeviceStateAdmin(PortalAdmin, ReadOnlyAdmin):
    list_display = ["source", "state", "state_since", "last_seen_at", "silent", "last_good_poll_at",
                    "consecutive_failures", "last_error_code", "last_error"]
    list_filter = ["state", "silent", "last_error_code"]
    search_fields = ["source__source_id"]


@admin.register(StateChange)
class StateChangeAdmin(PortalAdmin, ReadOnlyAdmin):
    list_display = ["at", "source", "state", "reason"]
    list_filter = ["state"]
    search_fields = ["source__source_id"]
