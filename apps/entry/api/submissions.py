"""Live validation and submissions (R-7.3.1.2–3, R-7.3.2, R-6.5): thin adapters over
apps.entry.services.submissions and apps.entry.selectors. Another park's form or submission answers 404, exactly
like an unknown one."""

from __future__ import annotations

import contextlib

from django.utils.translation import get_language
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import access
from apps.accounts.access import Action
from apps.core.errors import CarbonParkError
from apps.core.openapi import error_response
from apps.entry import errors, selectors
from apps.entry.models import Form, Submission
from apps.entry.rules import rule_problems
from apps.entry.services import submissions as services
from apps.entry.validation import validate_values

MAX_LIST = 500


def _lang() -> str:
    return get_language() or "zh-hans"


def as_json(sub: Submission, *, full: bool = True) -> dict:
    out = {"id": sub.pk, "form": sub.form.code, "version": sub.version.number, "park": sub.park.code,
           "period": sub.period_start.isoformat(), "state": sub.state, "createdBy": sub.created_by_label,
           "submittedBy": sub.submitted_by_label or None,
           "submittedAt": sub.submitted_at.isoformat() if sub.submitted_at else None,
           "reviewer": sub.reviewer_label or None,
           "reviewedAt": sub.reviewed_at.isoformat() if sub.reviewed_at else None,
           "reviewComment": sub.review_comment, "updatedAt": sub.updated_at.isoformat()}
    if full:
        out["values"] = sub.values
        out["attachments"] = [{"id": a.pk, "field": a.field, "name": a.original_name, "contentType": a.content_type,
                               "size": a.size, "sha256": a.sha256} for a in sub.attachments.all()]
        out["versions"] = [{"number": n, "at": h.history_date.isoformat(), "state": h.state,
                            "by": h.history_user.get_username() if h.history_user else None,
                            "reason": h.history_change_reason or ""} for n, h in selectors.versions_of(sub)]
    return out


def error_list():
    return inline_serializer("FieldError", {
        "path": serializers.CharField(help_text="the field: amount, fuels[2].ncv; empty for the whole form"),
        "code": serializers.CharField(), "message": serializers.CharField(),
        "messages": inline_serializer("FieldErrorMessages", {"zh": serializers.CharField(),
                                                              "en": serializers.CharField()})}, many=True)


FIELD_ERRORS = error_list()


PERIOD_HELP = "the period: 2026-11 (month), 2026-Q4 (quarter), 2026 (year), or the date of its first day"

ValidateIn = inline_serializer("ValidateRequest", {
    "values": serializers.JSONField(help_text="top-level fields by key; a repeat section as a list of row objects"),
    "park": serializers.CharField(required=False, help_text="the park's code: its rule library is run too"),
    "period": serializers.CharField(required=False, help_text=PERIOD_HELP),
    "version": serializers.IntegerField(required=False, help_text="the form version (default: the latest)")})
ValidateOut = inline_serializer("ValidateResponse", {
    "version": serializers.IntegerField(), "values": serializers.JSONField(help_text="the cleaned values"),
    "errors": FIELD_ERRORS, "warnings": inline_serializer("RuleWarning", {
        "path": serializers.CharField(), "code": serializers.CharField(), "message": serializers.CharField(),
        "rule": serializers.CharField()}, many=True)})
SUBMISSION_FIELDS = {
    "id": serializers.IntegerField(), "form": serializers.CharField(), "version": serializers.IntegerField(),
    "park": serializers.CharField(), "period": serializers.DateField(),
    "state": serializers.ChoiceField(Submission.State.values), "createdBy": serializers.CharField(),
    "submittedBy": serializers.CharField(allow_null=True), "submittedAt": serializers.DateTimeField(allow_null=True),
    "reviewer": serializers.CharField(allow_null=True), "reviewedAt": serializers.DateTimeField(allow_null=True),
    "reviewComment": serializers.CharField(allow_blank=True), "updatedAt": serializers.DateTimeField(),
}
SubmissionOut = inline_serializer("Submission", {
    **SUBMISSION_FIELDS, "values": serializers.JSONField(),
    "attachments": inline_serializer("SubmissionAttachment", {
        "id": serializers.IntegerField(), "field": serializers.CharField(allow_blank=True),
        "name": serializers.CharField(), "contentType": serializers.CharField(), "size": serializers.IntegerField(),
        "sha256": serializers.CharField()}, many=True),
    "versions": inline_serializer("SubmissionVersion", {
        "number": serializers.IntegerField(), "at": serializers.DateTimeField(), "state": serializers.CharField(),
        "by": serializers.CharField(allow_null=True), "reason": serializers.CharField(allow_blank=True)}, many=True)})
DraftIn = inline_serializer("SubmissionDraft", {
    "form": serializers.CharField(), "park": serializers.CharField(help_text="the park's code"),
    "period": serializers.CharField(help_text=PERIOD_HELP),
    "values": serializers.JSONField()})
DraftOut = inline_serializer("SubmissionDraftSaved", {"submission": SubmissionOut, "errors": FIELD_ERRORS})
SubmitIn = inline_serializer("SubmissionSubmit", {"values": serializers.JSONField(required=False),
                                                  "reason": serializers.CharField(required=False)})
ReviewIn = inline_serializer("SubmissionReview", {"comment": serializers.CharField(required=False)})
RestoreIn = inline_serializer("SubmissionRestore", {"version": serializers.IntegerField(),
                                                    "reason": serializers.CharField(required=False)})
AttachIn = inline_serializer("SubmissionAttach", {"file": serializers.FileField(help_text="PDF, PNG or JPEG"),
                                                  "field": serializers.CharField(required=False)})
AttachOut = inline_serializer("SubmissionAttached", {"id": serializers.IntegerField(),
                                                     "sha256": serializers.CharField(),
                                                     "size": serializers.IntegerField()})
DiffOut = inline_serializer("SubmissionDiff", {
    "a": serializers.IntegerField(), "b": serializers.IntegerField(),
    "rows": inline_serializer("SubmissionDiffRow", {
        "path": serializers.CharField(), "label": serializers.JSONField(), "a": serializers.JSONField(),
        "b": serializers.JSONField(), "changed": serializers.BooleanField()}, many=True)})


def _text(data, name):
    value = data.get(name) if hasattr(data, "get") else None
    return value if isinstance(value, str) else None


def fillable(request, code) -> Form:
    """A form the caller may fill somewhere: a park's own where it may enter, a platform default where it may
    enter in any park. Else 404 (E8311), the same for unknown and not allowed."""
    form = selectors.forms_for(request.user).filter(code=code if isinstance(code, str) else "").first() \
        if isinstance(code, str) and len(code) <= 63 else None
    ids = access.park_ids(request.user, Action.ENTER)
    ok = form is not None and form.current_number is not None and (
        access.check(request.user, Action.ENTER, form.park_id) if form.park_id else (ids is None or bool(ids)))
    if not ok:
        raise CarbonParkError(errors.E8311, code=str(code)[:63])
    return form


class FormValidateView(APIView):
    """Live validation (R-7.3.1.2–3): the values of a form in, the cleaned values and every error out (the
    current published version), each error with its field path and its message in Chinese and English.
    Nothing is stored. Needs ``enter`` (in the form's park, or any park for the platform's forms)."""

    access_model = Form
    access_rules = {"POST": Action.ENTER}

    @extend_schema(operation_id="forms_validate", request=ValidateIn,
                   responses={200: ValidateOut, 404: error_response("E8311 no such form to fill")})
    def post(self, request, code: str):
        form = fillable(request, code)
        data = request.data if isinstance(request.data, dict) else {}
        version = services.version_for(form)
        number = data.get("version")
        if type(number) is int and number != version.number:  # a draft made with an older version
            version = form.versions.filter(number=number).first() or version
        values = data.get("values")
        cleaned, problems = validate_values(version, values if values is not None else {}, lang=_lang())
        warnings = []
        if data.get("park") is not None:
            park = _park(request, form, data.get("park"))
            start = None
            with contextlib.suppress(CarbonParkError):  # judged when the draft is saved; the rules then use today
                start = services.period_start(version.definition.get("period", "month"), data.get("period"))
            bad, warnings = rule_problems(version.definition, park, start, cleaned, lang=_lang())
            problems = problems + bad
        return Response({"version": version.number, "values": cleaned, "errors": problems, "warnings": warnings})


def _park(request, form: Form, code):
    """The park (by code) where the caller may enter and ``form`` may be filled, else 404 (E8311)."""
    code = code if isinstance(code, str) else ""
    park = access.parks(request.user, Action.ENTER).filter(code=code[:32]).first()
    if park is None or (form.park_id and form.park_id != park.pk):
        raise CarbonParkError(errors.E8311, code=form.code)
    return park


def visible(request, submission_id) -> Submission:
    sub = selectors.submission(request.user, submission_id)
    if sub is None:
        raise CarbonParkError(errors.E8301, id=str(submission_id)[:20])
    return sub


class SubmissionsView(APIView):
    """List the submissions of the caller's parks (``view``), or save a draft (``enter``): the values of a form
    for a park and a period, made on first save (autosave). The answer has the errors to show at the fields."""

    access_model = Submission
    access_rules = {"GET": Action.VIEW, "POST": Action.ENTER}

    @extend_schema(operation_id="submissions_list",
                   parameters=[OpenApiParameter("state", str, enum=Submission.State.values),
                               OpenApiParameter("form", str), OpenApiParameter("park", str)],
                   responses={200: inline_serializer("SubmissionList", {
                       "results": inline_serializer("SubmissionItem", SUBMISSION_FIELDS, many=True)})})
    def get(self, request):
        qs = selectors.submissions_for(request.user)
        q = request.query_params
        if q.get("state") in Submission.State.values:
            qs = qs.filter(state=q["state"])
        if q.get("form"):
            qs = qs.filter(form__code=q["form"][:63])
        if q.get("park"):
            qs = qs.filter(park__code=q["park"][:32])
        return Response({"results": [as_json(s, full=False) for s in qs[:MAX_LIST]]})

    @extend_schema(operation_id="submissions_save_draft", request=DraftIn,
                   responses={200: DraftOut, 404: error_response("E8311"), 409: error_response("E8302")})
    def post(self, request):
        data = request.data if isinstance(request.data, dict) else {}
        form = fillable(request, data.get("form"))
        park = _park(request, form, data.get("park"))
        sub, problems = services.save_draft(actor=request.user, form=form, park=park, period=data.get("period"),
                                            values=data.get("values", {}), lang=_lang())
        return Response({"submission": as_json(visible(request, sub.pk)), "errors": problems})


class SubmissionDetailView(APIView):
    """One submission with its values, evidence and versions (``view``)."""

    access_model = Submission
    access_rules = {"GET": Action.VIEW}

    @extend_schema(operation_id="submissions_detail", responses={200: SubmissionOut, 404: error_response("E8301")})
    def get(self, request, submission_id: int):
        return Response(as_json(visible(request, submission_id)))


class SubmissionSubmitView(APIView):
    """Submit (``enter``): all values checked; numbers unique on the platform (E8303); the item-bound values
    stored as readings (channel ``form``); stored values that changed asked as corrections. All or nothing."""

    access_model = Submission
    access_rules = {"POST": Action.ENTER}

    @extend_schema(operation_id="submissions_submit", request=SubmitIn,
                   responses={200: SubmissionOut, 400: error_response("E8304 (with errors), E8307, E8312"),
                              404: error_response("E8301"), 409: error_response("E8302, E8303, E8308")})
    def post(self, request, submission_id: int):
        sub = visible(request, submission_id)
        data = request.data if isinstance(request.data, dict) else {}
        services.submit(actor=request.user, submission_id=sub.pk, values=data.get("values"), lang=_lang(),
                        reason=_text(data, "reason") or "")
        return Response(as_json(visible(request, sub.pk)))


class SubmissionReviewView(APIView):
    """Approve (``approve`` in the park, never one's own submission)."""

    access_model = Submission
    access_rules = {"POST": Action.APPROVE}
    decision = "approve"

    @extend_schema(request=ReviewIn, responses={200: SubmissionOut, 403: error_response("E8306 own submission"),
                                                404: error_response("E8301"), 409: error_response("E8302")})
    def post(self, request, submission_id: int):
        sub = visible(request, submission_id)
        comment = request.data.get("comment") if isinstance(request.data, dict) else None
        if self.decision == "approve":
            services.approve(actor=request.user, submission_id=sub.pk, comment=comment if comment is not None else "")
        else:
            services.return_submission(actor=request.user, submission_id=sub.pk, comment=comment)
        return Response(as_json(visible(request, sub.pk)))


class SubmissionReturnView(SubmissionReviewView):
    """Return to the clerk with a comment (``approve`` in the park, never one's own submission)."""

    decision = "return"


class SubmissionAttachView(APIView):
    """Attach an evidence file (``enter``; multipart ``file``, optional ``field`` path)."""

    access_model = Submission
    access_rules = {"POST": Action.ENTER}

    @extend_schema(operation_id="submissions_attach", request={"multipart/form-data": AttachIn},
                   responses={201: AttachOut, 400: error_response("E8012, E8013"), 404: error_response("E8301")})
    def post(self, request, submission_id: int):
        sub = visible(request, submission_id)
        upload = request.FILES.get("file") if hasattr(request, "FILES") else None
        if upload is None:
            raise CarbonParkError(errors.E8307, field="file")
        att = services.add_attachment(actor=request.user, submission_id=sub.pk, upload=upload,
                                      field=_text(request.data, "field") or "")
        return Response({"id": att.pk, "sha256": att.sha256, "size": att.size}, status=201)


class SubmissionDiffView(APIView):
    """Two versions of a submission side by side (``view``): ``?a=1&b=3``."""

    access_model = Submission
    access_rules = {"GET": Action.VIEW}

    @extend_schema(operation_id="submissions_diff",
                   parameters=[OpenApiParameter("a", int, required=True), OpenApiParameter("b", int, required=True)],
                   responses={200: DiffOut, 404: error_response("E8301, E8313")})
    def get(self, request, submission_id: int):
        sub = visible(request, submission_id)
        a, b = request.query_params.get("a", ""), request.query_params.get("b", "")
        rows = selectors.diff(sub, int(a), int(b)) if a.isdigit() and b.isdigit() and max(len(a), len(b)) < 9 \
            else None
        if rows is None:
            raise CarbonParkError(errors.E8313, version=f"{a[:9]}/{b[:9]}")
        return Response({"a": int(a), "b": int(b), "rows": rows})


class SubmissionRestoreView(APIView):
    """Restore an earlier version's values as a new version of a draft or returned submission (``enter``)."""

    access_model = Submission
    access_rules = {"POST": Action.ENTER}

    @extend_schema(operation_id="submissions_restore", request=RestoreIn,
                   responses={200: SubmissionOut, 404: error_response("E8301, E8313"), 409: error_response("E8302")})
    def post(self, request, submission_id: int):
        sub = visible(request, submission_id)
        data = request.data if isinstance(request.data, dict) else {}
        version = data.get("version")
        services.restore(actor=request.user, submission_id=sub.pk,
                         version=version if type(version) is int else -1, reason=_text(data, "reason") or "")
        return Response(as_json(visible(request, sub.pk)))
