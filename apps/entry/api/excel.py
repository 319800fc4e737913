"""Excel templates, their import and exports (R-7.3.4): thin adapters over apps.entry.excel,
apps.entry.services.imports and apps.entry.exports. Another park's form answers E8311 (404), like an unknown
one."""

from django.http import FileResponse, HttpResponse
from django.utils.translation import get_language
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import access
from apps.accounts.access import Action
from apps.core import exports as core_exports
from apps.core.errors import CarbonParkError
from apps.entry import errors, excel, selectors
from apps.entry import exports as entry_exports
from apps.entry.api.submissions import fillable
from apps.entry.models import FormVersion
from apps.entry.services.imports import import_file

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MODES = ("check", "draft", "submit")


def _lang() -> str:
    return get_language() or "zh-hans"


class ImportErrorSerializer(serializers.Serializer):
    sheet = serializers.CharField(allow_null=True)
    row = serializers.IntegerField(allow_null=True)
    column = serializers.CharField(allow_null=True, help_text="the column's letter")
    cell = serializers.CharField(allow_null=True, help_text="e.g. D5")
    path = serializers.CharField(help_text="the field's path in the values (fuels[2].ncv)")
    code = serializers.CharField()
    message = serializers.CharField()
    messages = serializers.DictField(child=serializers.CharField(), help_text="zh and en")


class ImportReportSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    form = serializers.CharField()
    version = serializers.IntegerField()
    stored = serializers.BooleanField(help_text="false for mode=check (a dry run)")
    submission = serializers.IntegerField(allow_null=True, help_text="the submission stored (draft or submit)")
    state = serializers.CharField(allow_null=True, help_text="draft or submitted")
    values = serializers.JSONField(help_text="the values read, as a submission takes them")
    cleaned = serializers.JSONField(help_text="the values the validator keeps, calculated fields computed")


class ImportRefusedSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    errors = ImportErrorSerializer(many=True)


class FormTemplateView(APIView):
    """The XLSX template of one published version (docs/excel-import-export.zh.md): one sheet per section,
    Chinese and English headers with units, choice lists, a hidden sheet naming the version."""

    access_rules = {"GET": Action.VIEW}
    access_model = FormVersion

    @extend_schema(operation_id="forms_template", responses={(200, XLSX): OpenApiResponse(OpenApiTypes.BINARY)})
    def get(self, request, code: str, number: int):
        version = selectors.version(request.user, code, number)
        if version is None:
            raise NotFound(f"form {code} version {number}")
        response = HttpResponse(excel.template(version), content_type=XLSX)
        response["Content-Disposition"] = f'attachment; filename="{version.form.code}-v{version.number}.xlsx"'
        return response


def read_upload(request) -> tuple[bytes, str]:
    """The uploaded file (multipart field ``file``, or the body) and its name, bounded in size."""
    length = int(request.META.get("CONTENT_LENGTH") or 0) if str(request.META.get("CONTENT_LENGTH") or "0") \
        .isdigit() else 0
    if length > excel.reader.MAX_BYTES + 1_000_000:  # the file plus a multipart envelope
        raise CarbonParkError(errors.E8402, size=length, limit=excel.reader.MAX_BYTES)
    if (request.content_type or "").startswith("multipart/"):
        upload = request.FILES.get("file")
        if upload is None:
            raise CarbonParkError(errors.E8410)
        if upload.size > excel.reader.MAX_BYTES:
            raise CarbonParkError(errors.E8402, size=upload.size, limit=excel.reader.MAX_BYTES)
        return upload.read(), (upload.name or "")[:100]
    if not request.body:
        raise CarbonParkError(errors.E8410)
    return request.body, ""


class FormImportView(APIView):
    """Import a filled template (multipart: ``file``, ``mode``, ``park``, ``period``; or the .xlsx as the body
    with them in the query). ``mode=check`` (the default): a dry run on the version the file was made from.
    ``mode=draft`` or ``submit``: stored as the park's submission for the period, through the submission
    services, whole or not at all. Refused: 400 with every error by sheet, row and column."""

    access_rules = {"POST": Action.ENTER}
    access_model = FormVersion
    parser_classes = [MultiPartParser]

    @extend_schema(operation_id="forms_import",
                   request={"multipart/form-data": {"type": "object", "properties": {
                       "file": {"type": "string", "format": "binary"},
                       "mode": {"type": "string", "enum": list(MODES)}, "park": {"type": "string"},
                       "period": {"type": "string", "format": "date"}}},
                       XLSX: OpenApiTypes.BINARY},
                   responses={200: ImportReportSerializer, 400: ImportRefusedSerializer})
    def post(self, request, code: str):
        data, name = read_upload(request)
        form = fillable(request, code)
        params = request.POST if (request.content_type or "").startswith("multipart/") else request.query_params
        mode = params.get("mode") or "check"
        if mode not in MODES:
            raise CarbonParkError(errors.E8411, value=str(mode)[:20])
        lang = _lang()
        if mode == "check":
            result, number = check_file(form, data, lang)
        else:
            park = access.parks(request.user, Action.ENTER).filter(code=str(params.get("park") or "")[:32]).first()
            if park is None or (form.park_id and form.park_id != park.pk):
                raise CarbonParkError(errors.E8311, code=form.code)
            result = import_file(actor=request.user, form=form, park=park, period=params.get("period"), file=data,
                                 submit_it=mode == "submit", lang=lang, file_name=name)
            number = result.submission.version.number if result.submission is not None else None
        if result.errors:
            return refused(result.errors, lang)
        sub = result.submission
        return Response({"ok": True, "form": form.code, "version": number, "stored": result.stored,
                         "submission": sub.pk if sub else None, "state": sub.state if sub else None,
                         "values": result.values, "cleaned": result.cleaned})


def check_file(form, data: bytes, lang: str):
    """A dry run: the file read against the version of ``form`` it was made from (its hidden sheet)."""
    made_from = excel.template_version(data)
    version = (form.versions.filter(number=made_from[1]).first()
               if made_from is not None and made_from[0] == form.code else None)
    if version is not None:
        return excel.read_filled(version, data, lang=lang), version.number
    result = excel.ReadResult()
    if made_from is None:  # not a workbook, or not one of our templates: the reader says which
        current = form.versions.order_by("-number").first()
        result = excel.read_filled(current, data, lang=lang)
        return result, current.number
    result.errors.append(excel.reader._entry(errors.E8404, lang, expected=form.code,
                                             found=f"{made_from[0]} v{made_from[1]}"[:100]))
    return result, None


def refused(errs: list[dict], lang: str) -> Response:
    """Refused as a whole: one file-level error as itself, several as E8409 (nothing stored) with the list."""
    file_level = len(errs) == 1 and errs[0]["sheet"] is None
    err = getattr(errors, errs[0]["code"], None) if file_level else errors.E8409
    if err is None:  # a code of another app (ingestion's, through a submission): the list says it
        err = errors.E8409
    status = err.http_status if err.http_status < 500 else 400
    message = errs[0]["message"] if file_level else err.message(lang, count=len(errs))
    return Response({"code": err.code, "message": message, "errors": errs}, status=status)


class ExportView(APIView):
    """An export with its manifest (docs/exports.md): a zip holding the data file and ``manifest.json``
    (SHA-256 and size of the file, rows, filters, who, when, code version); ``manage.py verify_export``
    checks it. Kinds: submissions (park, form, state, since, until), readings (filters as GET
    /api/v1/readings: sourceId, dataCode, start, end, flag, view), corrections (park, state, since, until),
    revisions (park, correction), history (the audit trail: park, who, what, text, object_type, object_id,
    since, until) and forms (park, form)."""

    access_rules = {"GET": Action.EXPORT}

    @extend_schema(operation_id="exports_get",
                   parameters=[OpenApiParameter("format", OpenApiTypes.STR, enum=list(core_exports.FORMATS)),
                               OpenApiParameter("kind", OpenApiTypes.STR, OpenApiParameter.PATH,
                                                enum=list(entry_exports.KIND_NAMES))],
                   responses={(200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY)})
    def get(self, request, kind: str):
        params = request.query_params.copy()
        file_format = params.pop("format", ["csv"])[-1]
        result = entry_exports.export(request.user, kind, file_format, params)
        return FileResponse(result.file, as_attachment=True, filename=result.name, content_type="application/zip")
