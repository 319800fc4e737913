"""GET /api/v1/quality/indicators (R-9.1): the monthly quality indicators of the caller's parks, one row per
source, data item and month, with their sum over every row that matched. A thin adapter over
``apps.quality.indicators.selectors``; another park's code or source id is refused exactly like an unknown one
(E1009)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.views import APIView

from apps.accounts import access
from apps.accounts.access import Action
from apps.catalog.models import DataItem
from apps.core import errors as core_errors
from apps.core.api import DefaultPagination
from apps.core.errors import CarbonParkError
from apps.core.text import is_storable
from apps.quality.indicators import selectors
from apps.quality.models import IndicatorMonth
from apps.sources.models import DataSource

FILTERS = ("park", "month", "source", "code")
MAX_PARAM = 64

RATIO = {"allow_null": True, "min_value": 0, "max_value": 1}
RATIOS = {"completeness": serializers.FloatField(**RATIO), "continuity": serializers.FloatField(**RATIO),
          "fillRate": serializers.FloatField(**RATIO), "timeliness": serializers.FloatField(**RATIO),
          "consistency": serializers.FloatField(**RATIO)}
ROW_FIELDS = {
    "park": serializers.CharField(), "sourceId": serializers.CharField(), "sourceName": serializers.CharField(),
    "dataCode": serializers.CharField(), "month": serializers.CharField(help_text="YYYY-MM, the park's local month"),
    "collectionMethod": serializers.CharField(), "automatic": serializers.BooleanField(),
    "intervalSeconds": serializers.IntegerField(), "periodSeconds": serializers.IntegerField(),
    "expected": serializers.IntegerField(), "present": serializers.IntegerField(),
    "gaps": serializers.IntegerField(), "gapSeconds": serializers.IntegerField(),
    "patched": serializers.IntegerField(), "readings": serializers.IntegerField(),
    "timely": serializers.IntegerField(), "flagged": serializers.IntegerField(), "hits": serializers.IntegerField(),
    "inconsistent": serializers.IntegerField(), "instrumentType": serializers.CharField(allow_blank=True),
    "accuracyClass": serializers.CharField(allow_blank=True), "requiredClass": serializers.CharField(allow_blank=True),
    "accuracyOk": serializers.BooleanField(allow_null=True), **RATIOS,
}
Summary = inline_serializer("QualityIndicatorSummary", {
    "rows": serializers.IntegerField(), "sources": serializers.IntegerField(),
    "expected": serializers.IntegerField(), "present": serializers.IntegerField(),
    "readings": serializers.IntegerField(), "patched": serializers.IntegerField(),
    "timely": serializers.IntegerField(), "inconsistent": serializers.IntegerField(),
    "gaps": serializers.IntegerField(), "automaticShare": serializers.FloatField(**RATIO),
    "accuracy": serializers.FloatField(**RATIO), "accuracyMet": serializers.IntegerField(),
    "accuracyJudged": serializers.IntegerField(), "accuracyUnknown": serializers.IntegerField(), **RATIOS,
})
Page = inline_serializer("QualityIndicatorPage", {
    "count": serializers.IntegerField(), "next": serializers.CharField(allow_null=True),
    "previous": serializers.CharField(allow_null=True),
    "results": inline_serializer("QualityIndicator", ROW_FIELDS, many=True), "summary": Summary,
})
SUMMARY_KEYS = ("rows", "sources", "expected", "present", "readings", "patched", "timely", "inconsistent", "gaps",
                "automaticShare", "accuracy", "accuracyMet", "accuracyJudged", "accuracyUnknown", *RATIOS)


def _bad(param: str, detail: str) -> CarbonParkError:
    return CarbonParkError(core_errors.E1009, param=param, detail=detail)


def filtered(principal, params, action: Action = Action.VIEW, *, within=None):
    """The indicator rows matching ``params`` (park code, month YYYY-MM, source id, data code) that
    ``principal`` may ``action``, and the filters as given. A bad value, or a park, source or code the
    principal cannot see, is refused with E1009, the same for another park's as for an unknown one."""
    given = {}
    for name in FILTERS:
        value = params.get(name)
        if value in (None, ""):
            continue
        if not isinstance(value, str) or len(value) > MAX_PARAM or not is_storable(value) or "\ufffd" in value:
            raise _bad(name, "not valid text (UTF-8, no NUL, at most 64 characters)")
        given[name] = value
    qs = selectors.rows(principal, action, within=within)
    if "month" in given:
        month = selectors.parse_month(given["month"])
        if month is None:
            raise _bad("month", "a month as YYYY-MM, e.g. 2026-11")
        qs = qs.filter(month=month)
    if "park" in given:
        ids = list(access.parks(principal, action).filter(code=given["park"]).values_list("pk", flat=True))
        if not ids:
            raise _bad("park", f"unknown park {given['park']}")
        qs = qs.filter(park_id__in=ids)
    if "source" in given:
        ids = list(access.restrict(DataSource.objects.filter(source_id=given["source"]), principal, action)
                   .values_list("pk", flat=True))
        if not ids:
            raise _bad("source", f"unknown source {given['source']}")
        qs = qs.filter(source_id__in=ids)
    if "code" in given:
        ids = list(access.restrict(DataItem.objects.filter(code=given["code"]), principal, Action.VIEW)
                   .values_list("pk", flat=True))
        if not ids:
            raise _bad("code", f"unknown data code {given['code']}")
        qs = qs.filter(data_item_id__in=ids)
    return qs, given


def record(r: IndicatorMonth) -> dict:
    """One row as the API, the exports and the dashboard show it."""
    return {"park": r.park.code, "sourceId": r.source.source_id, "sourceName": r.source.name,
            "dataCode": r.data_item.code, "month": r.month.strftime("%Y-%m"),
            "collectionMethod": r.collection_method, "automatic": r.automatic, "intervalSeconds": r.interval_s,
            "periodSeconds": r.period_s, "expected": r.expected, "present": r.present, "gaps": r.gaps,
            "gapSeconds": r.gap_s, "patched": r.patched, "readings": r.readings, "timely": r.timely,
            "flagged": r.flagged, "hits": r.hit, "inconsistent": r.inconsistent,
            "instrumentType": r.instrument_type, "accuracyClass": r.accuracy_class,
            "requiredClass": r.required_class, "accuracyOk": r.accuracy_ok, **selectors.ratios(r)}


def ordered(qs):
    return qs.select_related("park", "source", "data_item").order_by("month", "park__code", "source__source_id",
                                                                      "data_item__code")


class QualityIndicatorsView(APIView):
    """The monthly quality indicators (R-9.1.1–R-9.1.4) of the caller's parks (``view``), filtered by park code,
    month (YYYY-MM), source id and data code; ``summary`` sums every row that matched (not only the page)."""

    access_model = IndicatorMonth
    access_rules = {"GET": Action.VIEW}

    @extend_schema(operation_id="quality_indicators_list", parameters=[
        OpenApiParameter("park", str, description="park code"),
        OpenApiParameter("month", str, description="YYYY-MM, the park's local calendar month"),
        OpenApiParameter("source", str, description="source id"),
        OpenApiParameter("code", str, description="data code"),
        OpenApiParameter("page", int), OpenApiParameter("page_size", int)], responses={200: Page})
    def get(self, request):
        qs, _given = filtered(request.user, request.query_params)
        paginator = DefaultPagination()
        page = paginator.paginate_queryset(ordered(qs), request, view=self)
        response = paginator.get_paginated_response([record(r) for r in page])
        summary = selectors.summarize(qs)
        response.data["summary"] = {k: summary[k] for k in SUMMARY_KEYS}
        return response
