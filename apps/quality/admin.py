import json

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from apps.accounts.access import AccessDenied, Action
from apps.accounts.audit_admin import AuditHistoryMixin
from apps.accounts.portal import NOBODY, PortalAdmin, PortalTabularInline, writable_choices
from apps.core.admin import ReadOnlyAdmin, ServiceAdmin
from apps.core.errors import CarbonParkError
from apps.quality import services
from apps.quality.indicators.selectors import ratios
from apps.quality.models import Alarm, BalanceGroup, BalanceMember, Fill, Gap, IndicatorMonth, PostHit, Rule
from apps.quality.services import BALANCE_FIELDS, RULE_FIELDS


class RuleForm(forms.ModelForm):
    def clean(self):
        data = super().clean()
        if "kind" in data and "params" in data:
            try:
                services.check_rule_params(data["kind"], data["params"], data.get("severity"))
            except ValidationError as exc:
                self.add_error(None, exc)
        return data


@admin.register(Rule)
class RuleAdmin(AuditHistoryMixin, PortalAdmin, ServiceAdmin, SimpleHistoryAdmin):
    form = RuleForm
    list_display = ["name", "kind", "severity", "park", "source", "data_item", "params", "enabled"]
    list_filter = ["kind", "severity", "enabled", "park"]
    search_fields = ["name"]
    autocomplete_fields = ["source", "data_item", "park"]

    def save_via_service(self, request, obj, form, change):
        fields = {k: form.cleaned_data[k] for k in RULE_FIELDS if k in form.cleaned_data}
        saved = services.save_rule(actor=request.user, rule=obj if change else None, **fields)
        obj.pk = saved.pk


class BalanceMemberFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        park_id = self.instance.park_id
        kept = [f for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        for f in kept:
            source = f.cleaned_data.get("source")
            if source is not None and park_id is not None and source.park_id != park_id:
                f.add_error("source", _("The source belongs to another park."))
        if not kept and self.instance.enabled:
            raise ValidationError(_("A balance group needs at least one sub-meter."))


class BalanceMemberInline(PortalTabularInline):
    model = BalanceMember
    formset = BalanceMemberFormSet
    extra = 1
    autocomplete_fields = ["source", "data_item"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # the seam on the choices: sources of the parks the user manages (another park's ids are unknown)
        if db_field.name == "source":
            kwargs["queryset"] = writable_choices(request, db_field.remote_field.model._default_manager.all(),
                                                  Action.MANAGE)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(BalanceGroup)
class BalanceGroupAdmin(AuditHistoryMixin, PortalAdmin, ServiceAdmin, SimpleHistoryAdmin):
    """Balance groups (R-9.2.2, cross-source consistency): a main meter against the sum of its sub-meters,
    checked after storage. Saved through services.save_balance_group with its sub-meters in one call."""

    inlines = [BalanceMemberInline]
    list_display = ["name", "park", "main_source", "main_item", "interval", "tolerance_pct", "tolerance_abs",
                    "member_count", "enabled"]
    list_filter = ["interval", "enabled", "park"]
    search_fields = ["name", "main_source__source_id"]
    autocomplete_fields = ["park", "main_source", "main_item"]
    fields = ["name", "park", "main_source", "main_item", "interval", "aggregate", "tolerance_pct", "tolerance_abs",
              "severity", "enabled"]

    @admin.display(description=_("sub-meters"), ordering="_members")
    def member_count(self, obj):
        return obj._members

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(_members=Count("members"))

    def save_via_service(self, request, obj, form, change):
        pass  # saved with its sub-meters in save_related, in one service call

    def save_related(self, request, form, formsets, change):
        members = []
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            if formset.model is BalanceMember:
                members += [(f.cleaned_data["source"], f.cleaned_data["data_item"]) for f in formset.forms
                            if f.cleaned_data and not f.cleaned_data.get("DELETE") and f.cleaned_data.get("source")
                            and f.cleaned_data.get("data_item")]
        stored = BalanceGroup.objects.get(pk=form.instance.pk) if change else None
        fields = {k: form.cleaned_data[k] for k in BALANCE_FIELDS if k in form.cleaned_data}
        saved = services.save_balance_group(actor=request.user, group=stored, members=members, **fields)
        form.instance.pk = saved.pk


@admin.register(BalanceMember)
class BalanceMemberAdmin(PortalAdmin, ReadOnlyAdmin):
    """The sub-meters of every balance group, read-only: they are edited on their group's page."""

    list_display = ["group", "source", "data_item"]
    list_filter = ["group__park"]

    def get_model_perms(self, request):
        return {}  # not in the menu: the sub-meters are on their group's page
    list_select_related = ["group", "source", "data_item"]
    search_fields = ["group__name", "source__source_id"]


class CodesInList:
    """Codes in a list, names in the tooltip: a park's or a source's name is on its own page (lists that fit a
    1 280 px screen)."""

    @admin.display(description=_("park"), ordering="park__code")
    def park_code(self, obj):
        return format_html('<span title="{}">{}</span>', obj.park, obj.park.code) if obj.park else "-"

    @admin.display(description=_("data source"), ordering="source__source_id")
    def source_code(self, obj):
        return format_html('<span title="{}">{}</span>', obj.source, obj.source.source_id) if obj.source else "-"

    @admin.display(description=_("data item"), ordering="data_item__code")
    def item_code(self, obj):
        return format_html('<span title="{}">{}</span>', obj.data_item, obj.data_item.code)

    @admin.display(description=_("collection time"), ordering="ts")
    def collected(self, obj):
        return timezone.localtime(obj.ts).strftime("%Y-%m-%d %H:%M:%S")


@admin.register(Alarm)
class AlarmAdmin(CodesInList, PortalAdmin):
    # alarms are raised by the platform; acknowledging one changes stored data of its park (MODIFY)
    add_action = delete_action = NOBODY
    change_action = Action.MODIFY
    list_display = ["last_at", "state", "kind", "code", "park_code", "source_code", "count", "message"]
    list_filter = ["state", "kind", "code", "park"]
    list_select_related = ["park", "source"]
    search_fields = ["message_zh", "message_en", "source__source_id"]
    readonly_fields = [f.name for f in Alarm._meta.fields]
    actions = ["acknowledge", "close"]

    # A message quoting a payload back can run to hundreds of characters: the list shows its start (the whole
    # text in the tooltip and on the alarm's page), so the list fits a 1 400 px screen (issue #7 item 11).
    MESSAGE_LIST_CHARS = 160

    @admin.display(description=_("message"))
    def message(self, obj):
        """The alarm's message in the portal's language (English when chosen and present)."""
        text = obj.message_en if (get_language() or "").startswith("en") and obj.message_en else obj.message_zh
        if len(text) <= self.MESSAGE_LIST_CHARS:
            return text
        return format_html('<span title="{}">{}</span>', text, Truncator(text).chars(self.MESSAGE_LIST_CHARS))

    @admin.action(description=_("Acknowledge the selected alarms"), permissions=["change"])
    def acknowledge(self, request, queryset):
        for alarm in queryset:
            services.acknowledge_alarm(actor=request.user, alarm=alarm)

    @admin.action(description=_("Close the selected alarms"), permissions=["change"])
    def close(self, request, queryset):
        for alarm in queryset:
            services.acknowledge_alarm(actor=request.user, alarm=alarm, close=True)


@admin.register(Gap)
class GapAdmin(CodesInList, PortalAdmin, ReadOnlyAdmin):
    """The gaps found (R-9.1.2), read-only: apps/quality/gaps.py finds them, apps/quality/filling fills them. A park
    administrator (MANAGE) may have open gaps filled now or set them aside (R-9.3.2.1), through the services."""

    list_display = ["gap_start", "gap_end", "park_code", "source_code", "item_code", "missing_points", "state",
                    "method"]
    actions = ["fill_now", "ignore"]
    list_filter = ["state", "park", "source"]
    list_select_related = ["park", "source", "data_item"]
    search_fields = ["source__source_id", "data_item__code"]
    date_hierarchy = "start"
    show_full_result_count = False

    # Short headers: the list fits 1 280 px in English too (the page of a gap has the fields' full names).
    @admin.display(description=_("last before"), ordering="start")
    def gap_start(self, obj):
        return timezone.localtime(obj.start).strftime("%Y-%m-%d %H:%M:%S")

    @admin.display(description=_("first after"), ordering="end")
    def gap_end(self, obj):
        return timezone.localtime(obj.end).strftime("%Y-%m-%d %H:%M:%S")

    @admin.display(description=_("missing"), ordering="missing")
    def missing_points(self, obj):
        return obj.missing

    def has_fill_permission(self, request):
        return self.may(request, Action.MANAGE)

    @admin.action(description=_("Fill the selected gaps now"), permissions=["fill"])
    def fill_now(self, request, queryset):
        from apps.quality.filling import fill_gap_now

        filled = skipped = 0
        for gap_id in queryset.values_list("pk", flat=True):
            try:
                run = fill_gap_now(actor=request.user, gap_id=gap_id)
            except (CarbonParkError, AccessDenied):  # not open any more, or not this user's to fill: said per gap below
                skipped += 1
                continue
            filled += run.linear + run.profile
        self.message_user(request, _("%(filled)d gap(s) filled, %(skipped)d skipped (not open or not allowed); "
                                     "a gap no method can fill stays open.") % {"filled": filled, "skipped": skipped})

    @admin.action(description=_("Ignore the selected gaps"), permissions=["fill"])
    def ignore(self, request, queryset):
        from apps.quality.filling import ignore_gap

        done = 0
        for gap_id in queryset.values_list("pk", flat=True):
            try:
                ignore_gap(actor=request.user, gap_id=gap_id, reason="portal")
                done += 1
            except (CarbonParkError, AccessDenied):
                pass
        self.message_user(request, _("%(count)d gap(s) ignored.") % {"count": done})


@admin.register(Fill)
class FillAdmin(CodesInList, PortalAdmin, ReadOnlyAdmin):
    """The points stored by the filling of gaps (R-9.3.2.1), each with its method and basis. Read-only:
    apps/quality/filling alone writes them."""

    list_display = ["collected", "source_code", "item_code", "method", "value", "superseded_at"]
    list_filter = ["method", "park", "source"]
    list_select_related = ["park", "source", "data_item"]
    search_fields = ["source__source_id", "data_item__code"]
    date_hierarchy = "ts"
    show_full_result_count = False


@admin.register(IndicatorMonth)
class IndicatorMonthAdmin(CodesInList, PortalAdmin, ReadOnlyAdmin):
    """The monthly quality indicators per source and item (R-9.1), read-only: apps/quality/indicators/compute.py
    alone writes them. The park's dashboard (/quality/dashboard/) charts them; this list finds one row."""

    list_display = ["month", "source_code", "item_code", "completeness", "continuity", "timeliness", "consistency",
                    "accuracy_ok", "automatic"]
    list_filter = ["month", "automatic", "accuracy_ok", "park", "source"]
    list_select_related = ["park", "source", "data_item"]
    search_fields = ["source__source_id", "data_item__code"]
    ordering = ["-month", "source__source_id", "data_item__code"]
    show_full_result_count = False

    @staticmethod
    def _pct(value):
        return "-" if value is None else f"{value * 100:.1f} %"

    @admin.display(description=_("completeness"))
    def completeness(self, obj):
        return self._pct(ratios(obj)["completeness"])

    @admin.display(description=_("continuity"))
    def continuity(self, obj):
        return self._pct(ratios(obj)["continuity"])

    @admin.display(description=_("timeliness"))
    def timeliness(self, obj):
        return self._pct(ratios(obj)["timeliness"])

    @admin.display(description=_("consistency"))
    def consistency(self, obj):
        return self._pct(ratios(obj)["consistency"])


@admin.register(PostHit)
class PostHitAdmin(CodesInList, PortalAdmin, ReadOnlyAdmin):
    """The log of checks after storage (R-9.2.2, R-9.2.3): each reading a post rule found suspect, when and why.
    Read-only: apps/quality/postchecks/ alone writes it."""

    # The park is in the filter and the switcher; the reason needs the room (fits 1 280 px in both languages).
    list_display = ["collected", "source_code", "item_code", "kind", "value_shown", "why", "found_by"]
    list_filter = ["kind", "severity", "park", "source"]
    list_select_related = ["park", "source", "data_item", "rule", "group"]
    search_fields = ["source__source_id", "data_item__code"]
    date_hierarchy = "ts"
    show_full_result_count = False

    @admin.display(description=_("check"))
    def found_by(self, obj):
        """The rule, or the balance group, that found it."""
        return obj.rule or obj.group or "-"

    @admin.display(description=_("value"), ordering="value")
    def value_shown(self, obj):
        return "-" if obj.value is None else _number(obj.value)

    @admin.display(description=_("reason"))
    def why(self, obj):
        """What the check saw, in a sentence of the page's language; the parameters as stored in the tooltip."""
        r = obj.reason or {}
        if obj.kind == "jump":
            text = _("change %(change)s from %(previous)s at %(at)s") % {
                "change": _number(r.get("change")), "previous": _number(r.get("previous")),
                "at": _local(r.get("previous_ts"))}
        elif obj.kind == "frozen":
            text = _("%(run)s identical readings, %(start)s to %(end)s") % {
                "run": r.get("run", "?"), "start": _local(r.get("run_from")), "end": _local(r.get("run_to"))}
        elif obj.kind == "outlier":
            centre = _number(r.get("median") if r.get("robust") else r.get("mean"))
            text = _("z = %(z)s against %(centre)s over %(window)s readings") % {
                "z": _number(r.get("z")), "centre": centre, "window": r.get("window", "?")}
        elif obj.kind == "balance":
            text = _("main %(main)s, sub-meters %(sum)s, difference %(difference)s beyond %(tolerance)s") % {
                "main": _number(r.get("main")), "sum": _number(r.get("sum")),
                "difference": _number(r.get("difference")), "tolerance": _number(r.get("tolerance"))}
        elif obj.kind == "ratio":
            text = _("ratio %(ratio)s outside [%(min)s, %(max)s] (%(numerator)s / %(denominator)s)") % {
                "ratio": _number(r.get("ratio")), "min": "-∞" if r.get("min") is None else _number(r.get("min")),
                "max": "+∞" if r.get("max") is None else _number(r.get("max")),
                "numerator": _number(r.get("numerator")), "denominator": _number(r.get("denominator"))}
        elif obj.kind == "duplicate":
            text = _("same values as %(other)s at %(matched)s of %(common)s timestamps") % {
                "other": r.get("other", "?"), "matched": r.get("matched", "?"), "common": r.get("common", "?")}
        else:
            text = ""
        return format_html('<span title="{}">{}</span>', json.dumps(r, ensure_ascii=False, default=str), text)


def _number(v) -> str:
    return "?" if not isinstance(v, (int, float)) else f"{v:.6g}"


def _local(text) -> str:
    """A stored ISO timestamp as the portal's local time to the second ("?" when absent or unreadable)."""
    from datetime import datetime

    try:
        return timezone.localtime(datetime.fromisoformat(str(text))).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        return "?"


from apps.quality.deadlines import admin as _deadlines_admin  # noqa: E402,F401  (registers its admins)
from apps.quality.registers import admin as _registers_admin  # noqa: E402,F401  (registers its admins)
