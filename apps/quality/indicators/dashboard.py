"""The quality dashboard of one park (issue #12 item 6, R-9.1): the month's indicators, charts of completeness and
timeliness per source and of the indicators over the last twelve months, open gaps, post-check hits and overdue
items, with links to their lists. Every read goes through the park-access seam: the parks offered are those the
user may view (narrowed by the park switcher); another park's code answers 404 like an unknown one."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts import access
from apps.accounts.access import Action
from apps.core.errors import CarbonParkError
from apps.quality.deadlines import selectors as deadlines
from apps.quality.indicators import selectors
from apps.quality.indicators.compute import month_start, next_month, previous_month
from apps.quality.models import Gap, PostHit

TREND_MONTHS = 12
INDICATORS = ("completeness", "continuity", "fillRate", "timeliness", "consistency", "automaticShare", "accuracy")


def labels() -> dict[str, str]:
    """The charts' words, translated here (the page's JavaScript has no catalog)."""
    return {"completeness": str(_("completeness")), "continuity": str(_("continuity")),
            "fillRate": str(_("fill rate (patched)")), "timeliness": str(_("timeliness")),
            "consistency": str(_("consistency")), "automaticShare": str(_("collected automatically")),
            "accuracy": str(_("accuracy class met")), "empty": str(_("No indicators for this month yet.")),
            "emptyTrend": str(_("No months with indicators yet."))}


def _pct(x):
    return None if x is None else round(100 * x, 1)


def _park(request, code: str | None):
    """The park shown: ``code`` among those the user may view in the portal (the switcher's pick), else the
    first of them. An unknown or another park's code: 404, the same for both."""
    parks = access.parks(request.user, Action.VIEW)
    within = access.portal_park_ids(request, Action.VIEW)
    if within is not None:
        parks = parks.filter(pk__in=within)
    parks = list(parks.order_by("code"))
    if code:
        found = [p for p in parks if p.code == code]
        if not found:
            raise Http404
        return found[0], parks
    return (parks[0] if parks else None), parks


def _month(text: str | None, tz: ZoneInfo) -> date:
    return selectors.parse_month(text or "") or month_start(timezone.localtime(timezone.now(), tz))


def dashboard_context(request) -> dict:
    """Everything the page shows, for the park and month asked (``?park=CODE&month=YYYY-MM``)."""
    code = request.GET.get("park") or None
    if code is not None and (len(code) > 64 or "\x00" in code):
        raise Http404
    park, parks = _park(request, code)
    if park is None:
        return {"park": None, "parks": []}
    tz = ZoneInfo(park.time_zone)
    month = _month(request.GET.get("month"), tz)
    rows = selectors.rows(request.user, within=[park.pk]).filter(park_id=park.pk)
    in_month = rows.filter(month=month)
    summary = selectors.summarize(in_month)
    first = month
    for _i in range(TREND_MONTHS - 1):
        first = previous_month(first)
    trend = selectors.summarize_by(rows.filter(month__gte=first, month__lte=month), "month")
    per_source = selectors.summarize_by(in_month, "source_id", "source__source_id", "source__name")
    for s in per_source:
        s["chart_url"] = reverse("admin:sources_datasource_chart", args=[s["source_id"]])
        for k in INDICATORS:
            s[f"{k}_pct"] = _pct(s[k])
    months = sorted(set(rows.values_list("month", flat=True).distinct()) | {month_start(timezone.localtime(
        timezone.now(), tz))}, reverse=True)
    start = datetime(month.year, month.month, 1, tzinfo=tz)
    end = datetime(next_month(month).year, next_month(month).month, 1, tzinfo=tz)
    open_gaps = access.restrict(Gap.objects.filter(park_id=park.pk, state=Gap.State.OPEN), request.user,
                                Action.VIEW).count()
    hits = access.restrict(PostHit.objects.filter(park_id=park.pk, ts__gte=start, ts__lt=end), request.user,
                           Action.VIEW).count()
    overdue = len(deadlines.overdue(request.user, within=[park.pk]))
    may_export = access.check(request.user, Action.EXPORT, park.pk)
    query = f"park={park.code}&month={month:%Y-%m}"
    links = {
        "gaps": reverse("admin:quality_gap_changelist") + f"?park__id__exact={park.pk}&state__exact=open",
        "hits": reverse("admin:quality_posthit_changelist") + f"?park__id__exact={park.pk}",
        "overdue": reverse("admin:overdue_page"),
        "sources": reverse("admin:sources_datasource_changelist") + f"?park__id__exact={park.pk}",
        "csv": reverse("admin:quality_dashboard_export") + f"?{query}&format=csv" if may_export else None,
        "xlsx": reverse("admin:quality_dashboard_export") + f"?{query}&format=xlsx" if may_export else None,
    }
    chart = {
        "labels": labels(),
        "sources": [{"id": s["source__source_id"], "name": s["source__name"],
                     "completeness": _pct(s["completeness"]), "timeliness": _pct(s["timeliness"]),
                     "continuity": _pct(s["continuity"]), "consistency": _pct(s["consistency"])}
                    for s in per_source],
        "trend": [{"month": t["month"].strftime("%Y-%m"), **{k: _pct(t[k]) for k in
                   ("completeness", "continuity", "timeliness", "consistency", "automaticShare")}} for t in trend],
    }
    return {"park": park, "parks": parks, "month": month, "months": months, "summary": summary,
            "pct": {k: _pct(summary[k]) for k in INDICATORS}, "per_source": per_source, "chart": chart,
            "open_gaps": open_gaps, "hits": hits, "overdue": overdue, "links": links,
            "computed_at": in_month.order_by("-computed_at").values_list("computed_at", flat=True).first()}


def quality_dashboard_view(request):
    """The quality dashboard page (``view`` in at least one park)."""
    ids = access.park_ids(request.user, Action.VIEW)
    if ids is not None and not ids:
        raise PermissionDenied
    context = {**admin.site.each_context(request), "title": _("Quality dashboard"), **dashboard_context(request)}
    return TemplateResponse(request, "admin/quality/dashboard.html", context)


def quality_dashboard_export_view(request):
    """The month's indicators of the park as a CSV or XLSX export with its manifest (docs/exports.md), by the
    export service (``export`` right, formula injection neutralised, recorded on the audit trail)."""
    from apps.entry import exports

    params = {k: request.GET.get(k, "") for k in ("park", "month")}
    file_format = request.GET.get("format", "csv")
    if file_format not in ("csv", "xlsx") or not params["park"]:
        raise Http404
    try:
        result = exports.export(request.user, "indicators", file_format, params)
    except CarbonParkError as exc:
        raise Http404 from exc
    return FileResponse(result.file, as_attachment=True, filename=result.name, content_type="application/zip")
