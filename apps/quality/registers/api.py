"""GET /api/v1/consumption (issue #12 item 2): consumption derived from a source's meter registers, per register
interval or per park-local hour, day or month. A thin adapter over ``apps.quality.registers.selectors``."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.access import Action
from apps.core.api import public_url
from apps.core.openapi import error_response
from apps.quality.models import Consumption
from apps.quality.registers import selectors

ROW_FIELDS = {
    "sourceId": serializers.CharField(), "dataCode": serializers.CharField(),
    "start": serializers.CharField(help_text="park-local YYYY-MM-DD HH:MM:SS: the bucket's start, or the reading "
                                             "before the interval"),
    "end": serializers.CharField(required=False, help_text="interval only: the reading that ends it"),
    "readingStart": serializers.FloatField(required=False), "readingEnd": serializers.FloatField(required=False),
    "advance": serializers.FloatField(required=False, help_text="interval only: register units, before CT × PT"),
    "consumption": serializers.FloatField(allow_null=True, help_text="in the data item's unit, after CT × PT"),
    "kind": serializers.ChoiceField(["ok", "rollover", "reset", "replacement", "implausible"], required=False),
    "gap": serializers.BooleanField(required=False),
    "intervals": serializers.IntegerField(required=False), "flagged": serializers.IntegerField(required=False),
    "spread": serializers.BooleanField(required=False, help_text="part of it spread from a gap"),
    "unit": serializers.CharField(),
}
ConsumptionPage = inline_serializer("ConsumptionPage", {
    "next": serializers.CharField(allow_null=True),
    "results": inline_serializer("ConsumptionRow", ROW_FIELDS, many=True)})


class ConsumptionView(APIView):
    """Consumption derived from a source's meter registers (``view`` in the source's park)."""

    access_model = Consumption
    access_rules = {"GET": Action.VIEW}

    @extend_schema(
        operation_id="consumption_query",
        parameters=[
            OpenApiParameter("source", OpenApiTypes.STR, required=True, description="the source id"),
            OpenApiParameter("code", OpenApiTypes.STR, description="the data code (default: every register of "
                                                                   "the source)"),
            OpenApiParameter("interval", OpenApiTypes.STR, enum=list(selectors.INTERVALS),
                             description="per register interval, or park-local hour (default), day, month"),
            OpenApiParameter("from", OpenApiTypes.STR, description="inclusive, YYYY-MM-DD HH:MM:SS in the park's "
                                                                   "zone or ISO 8601 with an offset"),
            OpenApiParameter("to", OpenApiTypes.STR, description="inclusive"),
            OpenApiParameter("cursor", OpenApiTypes.STR), OpenApiParameter("limit", OpenApiTypes.INT),
        ],
        responses={200: ConsumptionPage, 400: error_response("E1009 a parameter is wrong or names an unknown "
                                                             "source, code or register")},
    )
    def get(self, request):
        query = selectors.ConsumptionQuery.from_params(request.query_params, request.user)
        results, cursor = selectors.consumption_page(query, cursor=request.query_params.get("cursor"),
                                                     limit=request.query_params.get("limit"))
        nxt = None
        if cursor:
            params = request.query_params.copy()
            params["cursor"] = cursor
            nxt = public_url(request, params.urlencode())
        return Response({"next": nxt, "results": results})
