"""The portal's pages of meter registers (issue #12 item 2): a park administrator manages the registers of their
park's sources (``manage``), with the meter replacements inline; every save goes through
apps/quality/registers/services.py (validated, audited, the register derived again). Another park's registers
are not listed and their ids open nothing, like unknown ones (PortalAdmin)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from apps.accounts.portal import PortalAdmin, PortalTabularInline
from apps.core.admin import ReadOnlyAdmin, ServiceAdmin
from apps.quality.models import Consumption, MeterReplacement, RegisterInterval, RegisterSetting
from apps.quality.registers import services
from apps.quality.registers.services import SETTING_FIELDS


class RegisterSettingForm(forms.ModelForm):
    class Meta:
        model = RegisterSetting
        fields = SETTING_FIELDS

    def clean(self):
        data = super().clean()
        source = data.get("source")
        if source is not None:
            self.instance.park_id = source.park_id  # the park the save is checked in (PortalAdmin.require_write)
        probe = RegisterSetting(park_id=self.instance.park_id, **{k: v for k, v in data.items()
                                                                  if k in SETTING_FIELDS})
        try:
            services.check_setting(probe)
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                if field in self.fields and field not in self.errors:
                    self.add_error(field, messages)
        return data


class ReplacementForm(forms.ModelForm):
    class Meta:
        model = MeterReplacement
        fields = ["ts", "old_last", "new_first", "note"]

    def clean(self):
        data = super().clean()
        for name in ("old_last", "new_first"):
            v = data.get(name)
            if v is not None and not -1e15 <= v <= 1e15:
                self.add_error(name, _("Enter a number between %(low)s and %(high)s.") % {"low": "-1e+15",
                                                                                          "high": "1e+15"})
        return data


class ReplacementInline(PortalTabularInline):
    model = MeterReplacement
    form = ReplacementForm
    extra = 0
    fields = ["ts", "old_last", "new_first", "note"]


@admin.register(RegisterSetting)
class RegisterSettingAdmin(PortalAdmin, ServiceAdmin):
    form = RegisterSettingForm
    inlines = [ReplacementInline]
    list_display = ["source_code", "item_code", "modulus", "ct_ratio", "pt_ratio", "rated_power_kw",
                    "max_delta_per_hour", "replacements_count", "chart"]
    list_filter = ["park"]
    list_select_related = ["park", "source", "data_item"]
    search_fields = ["source__source_id", "data_item__code"]
    autocomplete_fields = ["source", "data_item"]

    @admin.display(description=_("data source"), ordering="source__source_id")
    def source_code(self, obj):
        return format_html('<span title="{}">{}</span>', obj.source.name, obj.source.source_id)

    @admin.display(description=_("data item"), ordering="data_item__code")
    def item_code(self, obj):
        return format_html('<span title="{}">{}</span>', obj.data_item, obj.data_item.code)

    @admin.display(description=_("meter replacements"))
    def replacements_count(self, obj):
        return obj.n_replacements

    @admin.display(description=_("chart"))
    def chart(self, obj):
        from django.urls import reverse

        return format_html('<a href="{}">{}</a>', reverse("admin:sources_datasource_chart", args=[obj.source_id]),
                           _("chart"))

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(n_replacements=Count("replacements"))

    def save_via_service(self, request, obj, form, change):
        fields = {k: form.cleaned_data[k] for k in SETTING_FIELDS if k in form.cleaned_data}
        saved = services.save_register_setting(actor=request.user, setting=obj if change else None, **fields)
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        services.delete_register_setting(actor=request.user, setting=obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            services.delete_register_setting(actor=request.user, setting=obj)

    def save_formset(self, request, form, formset, change):
        setting = form.instance
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for f in formset.forms:
            if not f.has_changed() and not (formset.can_delete and formset._should_delete_form(f)):
                continue
            obj = f.instance
            if formset.can_delete and formset._should_delete_form(f):
                if obj.pk:
                    services.delete_replacement(actor=request.user, replacement=obj)
                    formset.deleted_objects.append(obj)
                continue
            fields = {k: f.cleaned_data[k] for k in ("ts", "old_last", "new_first", "note") if k in f.cleaned_data}
            new = obj.pk is None
            saved = services.save_replacement(actor=request.user, replacement=None if new else obj,
                                              setting=setting, **fields)
            if new:
                formset.new_objects.append(saved)
            else:
                formset.changed_objects.append((saved, f.changed_data))



def _local(ts) -> str:
    return timezone.localtime(ts).strftime("%Y-%m-%d %H:%M:%S")


@admin.register(MeterReplacement)
class MeterReplacementAdmin(PortalAdmin, ReadOnlyAdmin):
    """Every meter replacement of the park's registers; recorded and changed on the register's own page."""

    list_display = ["replaced", "setting", "old_last", "new_first", "note"]
    list_select_related = ["setting__source", "setting__data_item"]
    search_fields = ["setting__source__source_id"]

    @admin.display(description=_("replaced at"), ordering="ts")
    def replaced(self, obj):
        return _local(obj.ts)


@admin.register(RegisterInterval)
class RegisterIntervalAdmin(PortalAdmin, ReadOnlyAdmin):
    """The derived intervals (apps/quality/registers/derive.py alone writes them), to look one up."""

    list_display = ["source", "data_item", "from_ts", "to_ts", "reading_start", "reading_end", "delta",
                    "consumption", "kind", "gap"]
    list_filter = ["kind", "gap", "park"]
    list_select_related = ["source", "data_item"]
    search_fields = ["source__source_id"]
    date_hierarchy = "end"
    show_full_result_count = False

    @admin.display(description=_("reading before"), ordering="start")
    def from_ts(self, obj):
        return _local(obj.start)

    @admin.display(description=_("reading"), ordering="end")
    def to_ts(self, obj):
        return _local(obj.end)


@admin.register(Consumption)
class ConsumptionAdmin(PortalAdmin, ReadOnlyAdmin):
    """Derived consumption per park-local hour, day and month (GET /api/v1/consumption reads the same rows)."""

    list_display = ["source", "data_item", "level", "start", "value", "intervals", "flagged", "spread"]
    list_filter = ["level", "spread", "park"]
    list_select_related = ["source", "data_item"]
    search_fields = ["source__source_id"]
    date_hierarchy = "bucket"
    show_full_result_count = False

    @admin.display(description=_("start"), ordering="bucket")
    def start(self, obj):
        return _local(obj.bucket)
