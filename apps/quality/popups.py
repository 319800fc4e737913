"""Alarm pop-ups in the portal (R-7.4.4.2: "an outage or a response over the threshold raises an alarm shown as an
in-portal pop-up"). Every portal page shows the open alarms of the kinds in PORTAL_POPUP_ALARM_KINDS (third-party
platform alarms by default) in the parks the user may view, through the access seam, until the user dismisses
them. Dismissals are remembered in the user's session (bounded); an alarm that is closed and raised again is a new
row, so it pops up again.

Cost per page: one query on the open alarms (the partial unique index uniq_open_alarm serves state='open'),
whatever the number of alarms: at most POPUP_LIMIT + 1 rows are read."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import reverse
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme

from apps.accounts import access
from apps.accounts.access import Action

SESSION_DISMISSED = "cp_alarm_popups_dismissed"
POPUP_LIMIT = 3
DISMISSED_KEEP = 200


def dismissed(request) -> list[int]:
    value = request.session.get(SESSION_DISMISSED, [])
    return [i for i in value if isinstance(i, int)] if isinstance(value, list) else []


def popups(request) -> dict | None:
    """The pop-ups for this page: ``{"alarms": [...], "more": bool}``, or None when there are none."""
    from apps.quality.models import Alarm

    kinds = settings.PORTAL_POPUP_ALARM_KINDS
    if not kinds:
        return None
    qs = access.restrict(Alarm.objects.filter(state=Alarm.State.OPEN, kind__in=kinds), request.user, Action.VIEW)
    hidden = dismissed(request)
    if hidden:
        qs = qs.exclude(pk__in=hidden)
    rows = list(qs.order_by("-last_at", "-pk").only("pk", "code", "kind", "message_zh", "message_en", "count",
                                                    "last_at", "park_id")[:POPUP_LIMIT + 1])
    if not rows:
        return None
    english = (translation.get_language() or "").startswith("en")
    alarms = [{"pk": a.pk, "code": a.code, "count": a.count, "last_at": a.last_at,
               "message": (a.message_en if english and a.message_en else a.message_zh)} for a in rows[:POPUP_LIMIT]]
    return {"alarms": alarms, "more": len(rows) > POPUP_LIMIT}


def dismiss(request, ids: list[int]) -> None:
    """Remember that this user has seen these alarms (the newest DISMISSED_KEEP are kept)."""
    kept = dismissed(request)
    for i in ids:
        if i not in kept:
            kept.append(i)
    request.session[SESSION_DISMISSED] = kept[-DISMISSED_KEEP:]


def dismiss_view(request, site_name: str):
    """The portal's "dismiss" button (admin:alarm_popups_dismiss, behind admin_view): the shown alarms' ids, then
    back to the page it came from (this host only)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    ids = [int(v) for v in request.POST.getlist("alarm")[:POPUP_LIMIT * 2]
           if v.isascii() and v.isdigit() and len(v) < 19]
    dismiss(request, ids)
    target = request.POST.get("next") or reverse("admin:index", current_app=site_name)
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = reverse("admin:index", current_app=site_name)
    return HttpResponseRedirect(target)
