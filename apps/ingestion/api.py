"""POST and GET /api/v1/readings (interfaces.md §3): a thin adapter over ingest_readings and the
readings selector."""

from __future__ import annotations

from django.conf import settings
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import get_language
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import access
from apps.accounts.access import Action
from apps.core import errors
from apps.core.api import public_url
from apps.core.errors import CarbonParkError
from apps.core.openapi import ErrorSerializer, error_response
from apps.ingestion import selectors
from apps.ingestion.channels.payloads import decode
from apps.ingestion.config import current_config
from apps.ingestion.jsonbody import decode_batch
from apps.ingestion.models import Reading
from apps.ingestion.services import ingest_readings, request_fingerprint

IDEMPOTENCY_HEADER = "HTTP_IDEMPOTENCY_KEY"


# The reading record of interfaces.md §1, for the OpenAPI document (the pipeline does the checking).
RECORD_SCHEMA = {
    "type": "object",
    "required": ["sourceId", "timestamp", "value"],
    "properties": {
        "sourceId": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$", "example": "JSTZ01-EM-0001"},
        "dataCode": {"type": "string", "pattern": "^(CS|CK|CO)\\d{6}$", "example": "CS010201",
                     "description": "may be omitted when the source is bound to exactly one code"},
        "timestamp": {"type": "string", "example": "2026-11-23 10:05:00.000",
                      "description": "YYYY-MM-DD HH:MM:SS[.SSS] in the park's zone, or ISO 8601 with an offset"},
        "value": {"oneOf": [{"type": "number"}, {"type": "string"}], "example": 1234.5,
                  "description": "number for number items; string for enum, string and date (YYYY-MM-DD) items"},
        "unit": {"type": "string", "example": "kWh", "description": "the item's unit or one convertible to it"},
        "status": {"type": "string", "enum": list("NFMSDCTB"), "default": "N"},
        "backfill": {"type": "boolean", "default": False},
    },
}


IngestAnswer = inline_serializer("IngestAnswer", {
    "accepted": serializers.IntegerField(),
    "duplicates": serializers.IntegerField(),
    "rejected": inline_serializer("RejectedRecord", {
        "index": serializers.IntegerField(), "code": serializers.CharField(),
        "message": serializers.CharField(), "field": serializers.CharField(required=False)}, many=True),
})

READING_OUT = {
    "sourceId": serializers.CharField(), "dataCode": serializers.CharField(), "timestamp": serializers.CharField(),
    "value": serializers.JSONField(allow_null=True, help_text="the effective value: the latest approved revision, "
                                   "else the value stored at ingest; string for enum/string/date items"),
    "rawValue": serializers.JSONField(allow_null=True, help_text="the value stored at ingest, before any revision"),
    "revision": serializers.IntegerField(allow_null=True, help_text="the revision giving the value, or null"),
    "unit": serializers.CharField(allow_blank=True), "status": serializers.CharField(),
    "backfill": serializers.BooleanField(), "flags": serializers.ListField(child=serializers.CharField()),
    "receivedValue": serializers.JSONField(required=False, allow_null=True),
    "receivedUnit": serializers.CharField(required=False, allow_blank=True, allow_null=True),
}

ROLLUP_OUT = {
    "sourceId": serializers.CharField(), "dataCode": serializers.CharField(),
    "start": serializers.CharField(help_text="the bucket's start, YYYY-MM-DD HH:MM:SS.SSS in the park's zone"),
    "count": serializers.IntegerField(help_text="readings counted: numeric, finite, not flagged invalid"),
    "sum": serializers.FloatField(allow_null=True), "min": serializers.FloatField(allow_null=True),
    "max": serializers.FloatField(allow_null=True),
    "last": serializers.FloatField(allow_null=True, help_text="the value of the latest reading in the bucket"),
    "lastTimestamp": serializers.CharField(), "unit": serializers.CharField(allow_blank=True),
}
# One page shape; its results are readings, or rollups with ``interval`` (an item is one or the other: a
# rollup has no timestamp and value, a reading no start and count, so oneOf is never ambiguous, even empty).
ReadingsPage = inline_serializer("ReadingsPage", {
    "next": serializers.CharField(allow_null=True, help_text="link to the next page (cursor), or null"),
    "previous": serializers.CharField(allow_null=True, help_text="link to the previous page, or null"),
    "results": PolymorphicProxySerializer("ReadingOrRollup", [inline_serializer("ReadingOut", READING_OUT),
                                                               inline_serializer("RollupOut", ROLLUP_OUT)],
                                          resource_type_field_name=None, many=True),
})


def decode_body(body: bytes):
    """JSON in; NaN and Infinity tolerated at this stage so that the one record carrying them is
    refused (E2008) while its neighbours are kept; so is a record that cannot be decoded on its own
    (E2019, apps.ingestion.jsonbody)."""
    try:
        return decode_batch(body)
    except ValueError as exc:
        raise CarbonParkError(errors.E1001, detail=str(exc)) from None


def check_idempotency_key(request) -> str | None:
    key = request.META.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not (1 <= len(key) <= 255) or not key.isascii() or not key.isprintable():
        raise CarbonParkError(errors.E1014, field="Idempotency-Key")
    return key


def read_records(request, limit: int):
    """The body as records, refused early if too large, not JSON, or too many records. A body in the
    CPE1 envelope (interfaces.md §5) is opened with the key its key id names; the records inside
    must be that key's source's. Returns (records, body, refusals, sealed indexes)."""
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        raise CarbonParkError(errors.E1004, limit=settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    ctype = (request.content_type or "application/json").split(";")[0].strip().lower()
    body = request.body
    if body[:4] == b"CPE1":
        try:
            got = decode(body, kind="json", cfg=current_config(), now=timezone.now(),
                         max_size=settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        except RecursionError:  # the sealed JSON nested deeper than the decoder goes
            raise CarbonParkError(errors.E1001, detail="nested too deeply") from None
        if len(got.records) > limit:
            raise CarbonParkError(errors.E1003, limit=limit, count=len(got.records))
        return got.records, body, got.refusals, frozenset(range(len(got.records))) if got.sealed else frozenset()
    if ctype not in ("application/json", "text/json", "") and not ctype.endswith("+json"):
        raise CarbonParkError(errors.E1006, content_type=ctype)
    data = decode_body(body)
    if isinstance(data, dict):
        data = [data]
    elif not isinstance(data, list):
        raise CarbonParkError(errors.E1002)
    if len(data) > limit:
        raise CarbonParkError(errors.E1003, limit=limit, count=len(data))
    return data, body, [], frozenset()


class ReadingsView(APIView):
    """Push readings (one record or an array of at most 10 000) and query their history.

    Pushing needs ``push`` (a device or integrator token, a data-entry clerk, a park administrator): a record
    of a source in a park the caller may not push to is rejected like one of an unknown source (E2003).
    Reading needs ``view``; ``format=csv`` is an export and needs ``export`` (docs/roles.md)."""

    access_model = Reading
    access_rules = {"GET": Action.VIEW, "GET format=csv": Action.EXPORT, "POST": Action.PUSH}

    def perform_content_negotiation(self, request, force=False):
        """DRF's negotiation, answered at once for what devices send (no Accept, ``*/*`` or ``application/json``:
        DRF picks the JSON renderer for each); a one-reading push spent a tenth of its CPU here otherwise."""
        if self.format_kwarg is None and request.META.get("HTTP_ACCEPT", "*/*") in ("*/*", "application/json"):
            renderer = self.get_renderers()[0]
            if renderer.media_type == "application/json":
                return renderer, "application/json"
        return super().perform_content_negotiation(request, force)

    @extend_schema(
        operation_id="readings_push",
        request={"application/json": {"oneOf": [RECORD_SCHEMA,
                                                {"type": "array", "maxItems": 10000, "items": RECORD_SCHEMA}]}},
        parameters=[OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER,
                                     description="Same key and body → same answer, stored once.")],
        responses={200: IngestAnswer,
                   # per-record rejections, or the request as a whole refused (E1001, E1002, E1003, E1014 ...)
                   400: PolymorphicProxySerializer("IngestAnswerOrError", [IngestAnswer, ErrorSerializer],
                                                   resource_type_field_name=None),
                   409: error_response("E1005 Idempotency-Key reused with another body"),
                   413: error_response("E1004 body too large")},
        description="Valid records are stored even when others are rejected (400 lists them by index). "
                    "The body may also be a CPE1 AES-256-GCM envelope (application/octet-stream, "
                    "interfaces.md §5) sealed with the source's key.",
    )
    def post(self, request):
        records, body, refused, sealed = read_records(request, settings.READINGS_MAX_BATCH)
        key = check_idempotency_key(request)
        parks = access.park_ids(request.user, Action.PUSH)  # None: a system administrator, every park
        result = ingest_readings(records, channel="http", actor=request.user, parks=parks,
                                 idempotency_key=key, request_hash=request_fingerprint(body) if key else None,
                                 refused=refused, sealed=sealed)
        response = Response(result.response(get_language() or "zh-hans"), status=result.http_status)
        if result.replayed:
            response["Idempotent-Replayed"] = "true"
        return response

    @extend_schema(
        operation_id="readings_query",
        parameters=[
            OpenApiParameter("sourceId", OpenApiTypes.STR, description="one or several, comma-separated"),
            OpenApiParameter("dataCode", OpenApiTypes.STR, description="one or several, comma-separated"),
            OpenApiParameter("start", OpenApiTypes.STR, description="inclusive, YYYY-MM-DD HH:MM:SS[.SSS]"),
            OpenApiParameter("end", OpenApiTypes.STR, description="inclusive, YYYY-MM-DD HH:MM:SS[.SSS]"),
            OpenApiParameter("flag", OpenApiTypes.STR, enum=list(selectors.FLAG_FILTERS),
                             description="readings carrying this flag; not with interval"),
            OpenApiParameter("interval", OpenApiTypes.STR, enum=list(selectors.INTERVALS),
                             description="hourly, daily or monthly rollups per source and data code instead of "
                                         "readings (park-local buckets; start and end bound the bucket's start; "
                                         "docs/rollups.md)"),
            OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"]),
            OpenApiParameter("view", OpenApiTypes.STR, enum=["effective", "raw"],
                             description="raw: the values stored at ingest, without revisions"),
            OpenApiParameter("cursor", OpenApiTypes.STR), OpenApiParameter("limit", OpenApiTypes.INT),
        ],
        responses={200: ReadingsPage, (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="format=csv")},
    )
    def get(self, request):
        export = request.query_params.get("format") == "csv"
        query = selectors.ReadingQuery.from_params(request.query_params, request.user,
                                                   Action.EXPORT if export else Action.VIEW)
        if export:
            response = StreamingHttpResponse(selectors.readings_csv(query), content_type="text/csv; charset=utf-8")
            name = f"rollups-{request.query_params['interval']}" if query.interval else "readings"
            response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
            return response
        page = selectors.readings_page(query, cursor=request.query_params.get("cursor"),
                                       limit=request.query_params.get("limit"))
        params = request.query_params.copy()

        def link(cursor):
            if cursor is None:
                return None
            params["cursor"] = cursor
            return public_url(request, params.urlencode())  # never the caller's Host header

        return Response({"next": link(page.next_cursor), "previous": link(page.prev_cursor),
                         "results": page.results})
