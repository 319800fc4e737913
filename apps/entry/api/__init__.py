"""Form endpoints (R-7.3.1, R-7.3.4): the forms a caller may fill or read, any published version's definition
with its content hash, its XLSX template and the check of a filled one; and exports with their manifest.
Drafts stay in the portal, for those who manage the park."""

from django.db.models import OuterRef, Subquery
from django.http import FileResponse, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import access
from apps.accounts.access import Action
from apps.core import exports as core_exports
from apps.core.errors import CarbonParkError
from apps.entry import errors, excel, selectors
from apps.entry import exports as entry_exports
from apps.entry.models import Form, FormVersion

PERIODS = ["day", "month", "quarter", "year"]


class CurrentVersionSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    content_hash = serializers.CharField(help_text="SHA-256 of the definition's canonical JSON")
    published_at = serializers.DateTimeField()
    period = serializers.ChoiceField(choices=PERIODS)


class FormSerializer(serializers.ModelSerializer):
    park = serializers.CharField(source="park.code", allow_null=True, default=None,
                                 help_text="the park's code; null for the platform's default forms")
    current_version = serializers.SerializerMethodField()

    class Meta:
        model = Form
        fields = ["code", "park", "name_zh", "name_en", "current_version"]

    @extend_schema_field(CurrentVersionSerializer)
    def get_current_version(self, form):
        return CurrentVersionSerializer({"number": form.current_number, "content_hash": form.current_hash,
                                         "published_at": form.current_published_at,
                                         "period": form.current_period}).data


class FormVersionSerializer(serializers.ModelSerializer):
    form = serializers.CharField(source="form.code")
    park = serializers.CharField(source="form.park.code", allow_null=True, default=None)
    definition = serializers.JSONField(help_text="the published definition (docs/form-definition.schema.json), "
                                                 "items' catalog attributes resolved into it")

    class Meta:
        model = FormVersion
        fields = ["form", "park", "number", "content_hash", "published_at", "definition"]


class FormListView(generics.ListAPIView):
    """Forms the caller may read (its parks' own and the platform's defaults) that have a published version,
    with that version's number, hash and period. One query for the page, whatever its length."""

    serializer_class = FormSerializer
    access_rules = {"GET": Action.VIEW}

    def get_queryset(self):
        latest = FormVersion.objects.filter(form=OuterRef("pk")).order_by("-number")
        return (selectors.forms_for(self.request.user)
                .filter(current_number__isnull=False)
                .annotate(current_hash=Subquery(latest.values("content_hash")[:1]),
                          current_published_at=Subquery(latest.values("published_at")[:1]),
                          current_period=Subquery(latest.values("definition__period")[:1]))
                .order_by("code"))


class FormVersionView(generics.RetrieveAPIView):
    """One published version of a form: its definition and content hash. A form the caller may not read
    answers 404, like an unknown one."""

    serializer_class = FormVersionSerializer
    access_rules = {"GET": Action.VIEW}

    def get_object(self):
        version = selectors.version(self.request.user, self.kwargs["code"], self.kwargs["number"])
        if version is None:
            raise NotFound(f"form {self.kwargs['code']} version {self.kwargs['number']}")
        self.check_object_permissions(self.request, version)
        return version


# --- Excel templates, their import and exports (R-7.3.4) ----------------------------------------------------

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


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
    stored = serializers.BooleanField(help_text="false: a dry run (storing arrives with submissions)")
    values = serializers.JSONField(help_text="the values read, as a submission takes them")
    cleaned = serializers.JSONField(help_text="the values the validator keeps, calculated fields computed")


class ImportRefusedSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    errors = ImportErrorSerializer(many=True)


class FormTemplateView(APIView):
    """The XLSX template of one published version (docs/excel-templates.zh.md): one sheet per section,
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


class FormImportView(APIView):
    """Check a filled template (multipart field ``file``, or the .xlsx as the body): every error by sheet, row
    and column, or the values read. The version is the one the file was made from (its hidden sheet), which
    must be a version of this form; its content hash must match. A dry run: nothing is stored yet."""

    access_rules = {"POST": Action.ENTER}
    access_model = FormVersion
    parser_classes = [MultiPartParser]

    @extend_schema(operation_id="forms_import",
                   request={"multipart/form-data": {"type": "object", "properties": {
                       "file": {"type": "string", "format": "binary"}}},
                       XLSX: OpenApiTypes.BINARY},
                   responses={200: ImportReportSerializer, 400: ImportRefusedSerializer})
    def post(self, request, code: str):
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > excel.reader.MAX_BYTES + 1_000_000:  # the file plus a multipart envelope
            raise CarbonParkError(errors.E8402, size=length, limit=excel.reader.MAX_BYTES)
        if (request.content_type or "").startswith("multipart/"):
            upload = request.FILES.get("file")
            if upload is None:
                raise CarbonParkError(errors.E8410)
            if upload.size > excel.reader.MAX_BYTES:
                raise CarbonParkError(errors.E8402, size=upload.size, limit=excel.reader.MAX_BYTES)
            data = upload.read()
        else:
            data = request.body
            if not data:
                raise CarbonParkError(errors.E8410)
        form = selectors.forms_for(request.user).filter(code=code).first()
        if form is None:
            raise NotFound(f"form {code}")
        if form.park_id is not None and not access.check(request.user, Action.ENTER, form.park_id):
            raise PermissionDenied("you may not enter data in this form's park")
        lang = getattr(request, "LANGUAGE_CODE", "zh-hans")
        made_from = excel.template_version(data)
        version = (selectors.version(request.user, code, made_from[1])
                   if made_from is not None and made_from[0] == code else None)
        if version is None:
            result = excel.read_filled(selectors.current_version(form) or _NoVersion(form), data, lang=lang) \
                if made_from is None else None
            errs = result.errors if result is not None else [{
                "sheet": None, "row": None, "column": None, "cell": None, "path": "", "code": errors.E8404.code,
                "message": errors.E8404.message(lang, expected=code, found=f"{made_from[0]} v{made_from[1]}"[:100]),
                "messages": errors.E8404.messages(expected=code, found=f"{made_from[0]} v{made_from[1]}"[:100])}]
            return _refused(errs, lang)
        result = excel.import_template(version, data, store=None, lang=lang)
        if result.errors:
            return _refused(result.errors, lang)
        return Response({"ok": True, "form": code, "version": version.number, "stored": False,
                         "values": result.values, "cleaned": result.cleaned})


class _NoVersion:
    """A form without a published version: any file is refused as not its template."""

    def __init__(self, form):
        self.form, self.number, self.content_hash, self.definition = form, 0, "-", {"sections": []}


def _refused(errs: list[dict], lang: str) -> Response:
    file_level = len(errs) == 1 and errs[0]["sheet"] is None and errs[0]["code"].startswith("E84")
    err = getattr(errors, errs[0]["code"]) if file_level else errors.E8409
    status = err.http_status
    message = errs[0]["message"] if file_level else err.message(lang, count=len(errs))
    return Response({"code": err.code, "message": message, "errors": errs}, status=status)


class ExportView(APIView):
    """An export with its manifest (docs/exports.md): a zip holding the data file and ``manifest.json``
    (SHA-256 and size of the file, rows, filters, who, when, code version); ``manage.py verify_export``
    checks it. Kinds: readings (filters as GET /api/v1/readings: sourceId, dataCode, start, end, flag,
    view), corrections (park, state, since, until), revisions (park, correction), history (the audit trail:
    park, who, what, text, object_type, object_id, since, until) and forms (park, form)."""

    access_rules = {"GET": Action.EXPORT}

    @extend_schema(operation_id="exports_get",
                   parameters=[OpenApiParameter("format", OpenApiTypes.STR, enum=list(core_exports.FORMATS)),
                               OpenApiParameter("kind", OpenApiTypes.STR, OpenApiParameter.PATH,
                                                enum=["readings", "corrections", "revisions", "history", "forms"])],
                   responses={(200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY)})
    def get(self, request, kind: str):
        params = request.query_params.copy()
        file_format = params.pop("format", ["csv"])[-1]
        result = entry_exports.export(request.user, kind, file_format, params)
        return FileResponse(result.file, as_attachment=True, filename=result.name, content_type="application/zip")
