"""The portal's landing page (issue #8, R-7.3.3): each role sees the figures of its parks and the shortcuts
it may use. Reads go through ``apps.quality.selectors``; which parks, through ``apps.accounts.access``."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

from apps.accounts import access
from apps.accounts.access import Action
from apps.quality.models import Alarm, Severity
from apps.quality.selectors import ParkFigures, landing_figures, totals

# Above this many parks the page shows the busiest as cards (with charts) and every park as table rows.
CARDS = 6
TABLE_PAGE = 25

# (action needed in at least one park, admin url name, label, hint)
SHORTCUTS = [
    (Action.VIEW, "admin:ingestion_reading_changelist", _("Readings"), _("browse and filter stored readings")),
    (Action.VIEW, "admin:ingestion_rejection_changelist", _("Rejected records"),
     _("what was refused, with its code and raw content")),
    (Action.VIEW, "admin:quality_alarm_changelist", _("Alarms"), _("open, acknowledged and closed alarms")),
    (Action.VIEW, "admin:overdue_page", _("Overdue data"), _("data past its due time, with its reminders")),
    (Action.VIEW, "admin:quality_dashboard", _("Quality dashboard"),
     _("completeness, timeliness, consistency and accuracy per month")),
    (Action.VIEW, "admin:sources_datasource_changelist", _("Data sources"), _("meters, monitors and their state")),
    (Action.PUSH, "swagger-ui", _("Push API"), _("send readings over HTTP (API documentation)")),
    (Action.AUDIT, "admin:core_auditentry_changelist", _("Audit trail"),
     _("who did what, when, in which park")),
    (Action.AUDIT, "admin:ingestion_ingestbatch_changelist", _("Validation log"),
     _("every batch received, accepted and rejected")),
    (Action.MANAGE, "admin:accounts_membership_changelist", _("Members"), _("who holds which role in the park")),
    (Action.MANAGE, "admin:accounts_apitoken_changelist", _("API tokens"), _("integrator and device tokens")),
    (Action.MANAGE, "admin:quality_rule_changelist", _("Validation rules"), _("the park's rule library")),
]
SYSTEM_SHORTCUTS = [
    ("admin:accounts_park_changelist", _("Parks"), _("every park on the platform")),
    ("admin:auth_user_changelist", _("Users"), _("accounts, staff and superusers")),
]


def _url(name: str, query: str = "") -> str | None:
    try:
        return reverse(name) + query
    except NoReverseMatch:
        return None


def shortcuts(user) -> list[dict]:
    """The links the user's roles allow, from the access seam (one membership read, cached on the user)."""
    out, seen = [], set()
    for action, name, label, hint in SHORTCUTS:
        ids = access.park_ids(user, action)
        if (ids is None or ids) and name not in seen and (url := _url(name)):
            seen.add(name)
            out.append({"name": name, "url": url, "label": label, "hint": hint, "action": action.value})
    if access.is_system(user):
        out += [{"name": name, "url": url, "label": label, "hint": hint, "action": "system"}
                for name, label, hint in SYSTEM_SHORTCUTS if (url := _url(name))]
    return out


CHANNEL_LABELS = {"http": "HTTP", "mqtt": "MQTT", "hj212": "HJ 212", "poller": _("polling"), "file": _("files"),
                  "form": _("forms"), "third_party": _("third parties"), "demo": _("demo")}
SEVERITY_ORDER = [Severity.REJECT, Severity.FLAG, Severity.WARN]
# An alarm's severity is that of the rule that raised it; on the landing page it reads as urgency.
ALARM_SEVERITY = {Severity.REJECT: _("critical"), Severity.FLAG: _("to review"), Severity.WARN: _("warning")}


def channel_label(code: str):
    return CHANNEL_LABELS.get(code, code)


def park_links(park_id: int) -> dict:
    return {
        "readings": _url("admin:ingestion_reading_changelist", f"?park={park_id}"),
        "alarms": _url("admin:quality_alarm_changelist", f"?park__id__exact={park_id}&state__exact=open"),
        "rejections": _url("admin:ingestion_rejection_changelist", f"?park__id__exact={park_id}"),
        "sources": _url("admin:sources_datasource_changelist", f"?park__id__exact={park_id}"),
        "quality": _url("admin:quality_dashboard"),
    }


def card(f: ParkFigures, role) -> dict:
    """What one park's card shows, labels resolved (the template only lays it out)."""
    severities = ALARM_SEVERITY
    kinds = dict(Alarm.Kind.choices)
    return {
        "f": f, "links": park_links(f.park.pk), "role": role, "chart_id": f"chart-{f.park.pk}",
        "channels": [{"code": c, "label": channel_label(c), "readings": r, "rejections": j}
                     for c, r, j in f.channel_rows()],
        "severities": [{"code": s, "label": severities[s], "n": f.alarms_by_severity[s]}
                       for s in SEVERITY_ORDER if f.alarms_by_severity.get(s)],
        "kinds": [{"code": k, "label": kinds.get(k, k), "n": n} for k, n in sorted(f.alarms_by_kind.items())],
    }


def chart(f: ParkFigures) -> dict:
    data = f.chart()
    for series in data["series"]:
        series["name"] = str(channel_label(series["name"]))
    return dict(data, id=f"chart-{f.park.pk}", empty=str(_("No readings yet today")))


def landing_context(request) -> dict:
    """The index page's context: figures of the parks the portal shows (the park switcher's pick, else every
    park the user may view), cards with a chart for up to ``CARDS`` parks (the busiest first when there are
    more), every park as a paginated table row when there are more, and the user's shortcuts and roles."""
    user = request.user
    figures = landing_figures(user, access.portal_park_ids(request, Action.VIEW))
    ranked = sorted(figures, key=lambda f: (-f.activity, f.park.code))
    many = len(figures) > CARDS
    cards = ranked[:CARDS] if many else figures
    page = None
    if many:
        page = Paginator(ranked, TABLE_PAGE).get_page(request.GET.get("page"))
    roles = access.roles_by_park(user)
    return {
        "dashboard": {
            "cards": [card(f, roles.get(f.park.pk)) for f in cards],
            "charts": [chart(f) for f in cards],
            "totals": totals(figures),
            "park_count": len(figures),
            "many": many,
            "page": page,
            "rows": [{"f": f, "links": park_links(f.park.pk)} for f in page.object_list] if page else [],
            "shortcuts": shortcuts(user),
            "is_system": access.is_system(user),
            "may_audit": access.park_ids(user, Action.AUDIT) != [],
            "audit_url": _url("admin:core_auditentry_changelist"),
            "roles_url": _url("admin:roles"),
            "my_roles": sorted({r.label for r in roles.values()}, key=str) if not access.is_system(user)
            else [access.SYSTEM.label],
        },
    }
