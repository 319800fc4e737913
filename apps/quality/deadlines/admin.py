"""The portal's pages of deadlines: the working-day table, the reminder log, and the overdue page."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from apps.accounts import access
from apps.accounts.access import Action
from apps.accounts.portal import NOBODY, SYSTEM_ONLY, PortalAdmin
from apps.core.admin import ServiceAdmin
from apps.quality.deadlines import selectors, services
from apps.quality.models import DeadlineReminder, WorkdayOverride


@admin.register(WorkdayOverride)
class WorkdayOverrideAdmin(PortalAdmin, ServiceAdmin, SimpleHistoryAdmin):
    add_action = change_action = delete_action = SYSTEM_ONLY
    history_action = Action.VIEW
    list_display = ["date", "is_workday", "note"]
    list_filter = ["is_workday"]
    search_fields = ["note"]
    date_hierarchy = "date"

    def save_via_service(self, request, obj, form, change):
        fields = {k: form.cleaned_data[k] for k in ("date", "is_workday", "note") if k in form.cleaned_data}
        saved = services.save_workday_override(actor=request.user, override=obj if change else None, **fields)
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        services.delete_workday_override(actor=request.user, override=obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            services.delete_workday_override(actor=request.user, override=obj)


@admin.register(DeadlineReminder)
class DeadlineReminderAdmin(PortalAdmin):
    # the log is written by the reminder task only
    add_action = change_action = delete_action = NOBODY
    list_display = ["sent_at", "step", "park", "item_kind", "item_label", "period_start", "period_end",
                    "deadline_kind", "due_at", "recipients"]
    list_filter = ["step", "item_kind", "deadline_kind", "park"]
    list_select_related = ["park"]
    search_fields = ["item_label"]
    readonly_fields = [f.name for f in DeadlineReminder._meta.fields]


def overdue_page_view(request):
    """The overdue list of the parks shown (the park switcher's), oldest due first, with each item's reminder
    and escalation from the log (R-6.2.b–d)."""
    ids = access.park_ids(request.user, Action.VIEW)
    if ids is not None and not ids:
        raise PermissionDenied
    now = timezone.now()
    items = selectors.overdue(request.user, now=now, within=access.portal_park_ids(request, Action.VIEW))
    log = {}
    if items:
        for kind, item_id, start, step, sent in DeadlineReminder.objects.filter(
                period_start__in={i.period_start for i in items}, item_id__in={i.item_id for i in items}
        ).values_list("item_kind", "item_id", "period_start", "step", "sent_at"):
            log[(kind, item_id, start, step)] = sent
    zones = dict(access.parks(request.user).filter(pk__in={i.park_id for i in items})
                 .values_list("pk", "time_zone"))
    rows = [{"item": i, "overdue_hours": int(i.overdue_for(now).total_seconds() // 3600),
             "due": i.due_at.astimezone(ZoneInfo(zones.get(i.park_id, "Asia/Shanghai"))).strftime("%Y-%m-%d %H:%M"),
             "reminded": log.get((i.item_kind, i.item_id, i.period_start, "remind")),
             "escalated": log.get((i.item_kind, i.item_id, i.period_start, "escalate"))} for i in items]
    context = {**admin.site.each_context(request), "title": _("Overdue data"), "rows": rows, "now": now}
    return TemplateResponse(request, "admin/quality/overdue.html", context)
