"""/api/v1/corrections (interfaces.md §3, R-9.3.2.2, R-9.3.2.3): a thin adapter over apps.corrections.services.

A correction of another park reads exactly like an unknown one (404, E8016); a source of another park like an
unknown source (400, E8001)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.access import Action
from apps.core import errors as core_errors
from apps.core.errors import CarbonParkError
from apps.core.openapi import error_response
from apps.corrections import errors, selectors, services
from apps.corrections.models import Correction

MAX_LIST = 500


def _local(ts, tz) -> str:
    return ts.astimezone(tz).isoformat(sep=" ", timespec="milliseconds")[:23]


def as_json(c: Correction) -> dict:
    import zoneinfo

    tz = zoneinfo.ZoneInfo(c.park.time_zone)
    return {
        "id": c.pk, "park": c.park.code, "sourceId": c.source.source_id, "dataCode": c.data_item.code,
        "start": _local(c.start, tz), "end": _local(c.end, tz), "kind": c.kind,
        "newValue": c.new_value, "factor": c.factor, "reason": c.reason, "state": c.state,
        "readingsInRange": c.readings_in_range, "requestedBy": c.requested_by_label,
        "requestedAt": c.requested_at.isoformat(), "decidedBy": c.decided_by_label or None,
        "decidedAt": c.decided_at.isoformat() if c.decided_at else None, "comment": c.comment,
        "appliedAt": c.applied_at.isoformat() if c.applied_at else None, "revised": c.revised_count,
        "evidence": [{"name": e.original_name, "contentType": e.content_type, "size": e.size, "sha256": e.sha256}
                     for e in c.evidence.all()],
    }


CORRECTION_FIELDS = {
    "id": serializers.IntegerField(), "park": serializers.CharField(), "sourceId": serializers.CharField(),
    "dataCode": serializers.CharField(), "start": serializers.CharField(), "end": serializers.CharField(),
    "kind": serializers.ChoiceField(Correction.Kind.values),
    "newValue": serializers.FloatField(allow_null=True), "factor": serializers.FloatField(allow_null=True),
    "reason": serializers.CharField(), "state": serializers.ChoiceField(Correction.State.values),
    "readingsInRange": serializers.IntegerField(), "requestedBy": serializers.CharField(),
    "requestedAt": serializers.DateTimeField(), "decidedBy": serializers.CharField(allow_null=True),
    "decidedAt": serializers.DateTimeField(allow_null=True), "comment": serializers.CharField(allow_blank=True),
    "appliedAt": serializers.DateTimeField(allow_null=True), "revised": serializers.IntegerField(),
    "evidence": inline_serializer("EvidenceOut", {
        "name": serializers.CharField(), "contentType": serializers.CharField(), "size": serializers.IntegerField(),
        "sha256": serializers.CharField()}, many=True),
}
CorrectionOut = inline_serializer("Correction", CORRECTION_FIELDS)
CorrectionList = inline_serializer("CorrectionList", {
    "results": inline_serializer("CorrectionItem", CORRECTION_FIELDS, many=True)})
CorrectionRequest = inline_serializer("CorrectionRequest", {
    "sourceId": serializers.CharField(), "dataCode": serializers.CharField(required=False),
    "start": serializers.CharField(help_text="inclusive, YYYY-MM-DD HH:MM:SS[.SSS] in the park's zone"),
    "end": serializers.CharField(help_text="inclusive; the same as start for one reading"),
    "newValue": serializers.FloatField(required=False), "factor": serializers.FloatField(required=False),
    "reason": serializers.CharField(),
    "evidence": serializers.FileField(required=False, help_text="PDF, PNG or JPEG; several allowed (multipart)"),
})
Decision = inline_serializer("CorrectionDecision", {"comment": serializers.CharField(required=False)})


def _field(data, name):
    """A field as sent (a form's last value of a repeated field); its type is the service's to judge."""
    return data.get(name)


class CorrectionsView(APIView):
    """Ask for a correction (``modify`` in the source's park: a clerk's requests are its own) and list the
    corrections of the caller's parks (``view``)."""

    access_model = Correction
    access_rules = {"GET": Action.VIEW, "POST": Action.MODIFY}

    @extend_schema(operation_id="corrections_list",
                   parameters=[OpenApiParameter("state", str, enum=Correction.State.values),
                               OpenApiParameter("sourceId", str)],
                   responses={200: CorrectionList})
    def get(self, request):
        qs = selectors.corrections_for(request.user).prefetch_related("evidence")
        state = request.query_params.get("state")
        if state:
            if state not in Correction.State.values:
                raise CarbonParkError(core_errors.E1009, param="state", detail=", ".join(Correction.State.values))
            qs = qs.filter(state=state)
        if request.query_params.get("sourceId"):
            qs = qs.filter(source__source_id=request.query_params["sourceId"][:100])
        return Response({"results": [as_json(c) for c in qs[:MAX_LIST]]})

    @extend_schema(operation_id="corrections_request",
                   request={"application/json": CorrectionRequest, "multipart/form-data": CorrectionRequest},
                   responses={201: CorrectionOut, 400: error_response("E80xx: what is wrong with the request")})
    def post(self, request):
        data = request.data
        evidence = request.FILES.getlist("evidence") if hasattr(request, "FILES") else []
        c = services.request_correction(
            actor=request.user, source_id=_field(data, "sourceId"), data_code=_field(data, "dataCode"),
            start=_field(data, "start"), end=_field(data, "end"), new_value=_field(data, "newValue"),
            factor=_field(data, "factor"), reason=_field(data, "reason"), evidence=evidence)
        return Response(as_json(c), status=201)


def visible(request, correction_id) -> Correction:
    c = selectors.corrections_for(request.user).prefetch_related("evidence").filter(pk=correction_id).first()
    if c is None:
        raise CarbonParkError(errors.E8016, id=correction_id)
    return c


class CorrectionDetailView(APIView):
    """One correction of the caller's parks (``view``); another park's reads like an unknown one (404)."""

    access_model = Correction
    access_rules = {"GET": Action.VIEW}

    @extend_schema(operation_id="corrections_detail", responses={200: CorrectionOut, 404: error_response("E8016")})
    def get(self, request, correction_id: int):
        return Response(as_json(visible(request, correction_id)))


class CorrectionDecisionView(APIView):
    """Approve or reject (``approve`` in the park, never one's own request; a rejection needs a comment).
    An approved correction is applied at once by a worker; its state turns ``applied``."""

    access_model = Correction
    access_rules = {"POST": Action.APPROVE}
    decision = "approve"

    @extend_schema(request=Decision, responses={200: CorrectionOut, 403: error_response("E8015 own request"),
                                                404: error_response("E8016"), 409: error_response("E8014")})
    def post(self, request, correction_id: int):
        c = visible(request, correction_id)
        decide = services.approve_correction if self.decision == "approve" else services.reject_correction
        c = decide(actor=request.user, correction_id=c.pk, comment=_field(request.data, "comment"))
        return Response(as_json(visible(request, c.pk)))


class CorrectionRejectView(CorrectionDecisionView):
    decision = "reject"
