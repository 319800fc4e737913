"""/api/v1/uploads/ (interfaces.md §3): the tus 1.0.0 server, a thin adapter over apps.uploads.services, and the
upload's state as JSON (``GET /api/v1/uploads/{id}``). docs/uploads.md is the integrators' guide.

Every tus operation needs ``push`` in the upload's park (an API token of the park, its clerks and administrators);
OPTIONS (what the server offers) needs no credentials and shows no park data. Another park's upload reads exactly
like an unknown one (404, E9011)."""

from __future__ import annotations

import base64
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import http_date
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.access import Action
from apps.core.errors import CarbonParkError
from apps.core.openapi import error_response
from apps.uploads import errors, selectors, services, tus
from apps.uploads.loading import COUNTS, progress_of
from apps.uploads.models import Upload

TUS_HEADER = OpenApiParameter("Tus-Resumable", OpenApiTypes.STR, OpenApiParameter.HEADER, required=True,
                              enum=[tus.VERSION], description="the tus protocol version: 1.0.0 (412 E9001 otherwise)")


def location(upload_id) -> str:
    """The upload's URL: absolute under PUBLIC_BASE_URL when it is set, else relative to the server (tus clients
    resolve it against the URL they posted to). Never built from the request's Host or X-Forwarded-* headers,
    which a client or a misconfigured front can set to anything."""
    return settings.PUBLIC_BASE_URL.rstrip("/") + reverse("upload-detail", args=[str(upload_id)])


def encode_metadata(metadata: dict) -> str:
    return ",".join(k if v is None else f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in metadata.items())


class _Body:
    """The request body, read piece by piece: the declared Content-Length through Django's limited stream, or a
    chunked body straight from the server's input when the server says where it ends (wsgi.input_terminated)."""

    def __init__(self, request):
        self.request = request._request
        meta = self.request.META
        chunked = "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
        self.stream = meta["wsgi.input"] if chunked and not meta.get("CONTENT_LENGTH") else self.request

    def read(self, size: int) -> bytes:
        return self.stream.read(size)


def body_size(request) -> int | None:
    """The body's declared size; None for a chunked body (size unknown, read to its end). A request with neither
    Content-Length nor chunked encoding has no body (RFC 9112 §6.3)."""
    meta = request._request.META
    if meta.get("CONTENT_LENGTH"):
        return tus.non_negative("Content-Length", meta["CONTENT_LENGTH"])
    if "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower() and meta.get("wsgi.input_terminated"):
        return None
    return 0


def _content_type(request) -> str:
    return request._request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()


def _tus_headers(response, upload: Upload) -> HttpResponse:
    response["Upload-Offset"] = str(upload.offset)
    if upload.state == Upload.State.RECEIVING:
        response["Upload-Expires"] = http_date(upload.expires_at.timestamp())
    return response


class _Tus(APIView):
    access_model = Upload
    access_rules = {"GET": Action.PUSH, "POST": Action.PUSH, "PATCH": Action.PUSH, "DELETE": Action.PUSH}

    def get_permissions(self):
        if self.request is not None and self.request.method == "OPTIONS":
            return []  # discovery: what the server offers, no park data
        return super().get_permissions()

    def options(self, request, *args, **kwargs):
        response = HttpResponse(status=204)
        response["Tus-Version"] = tus.VERSION
        response["Tus-Extension"] = ",".join(tus.EXTENSIONS)
        response["Tus-Max-Size"] = str(settings.UPLOAD_MAX_BYTES)
        response["Tus-Checksum-Algorithm"] = ",".join(tus.CHECKSUMS)
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Tus-Resumable"] = tus.VERSION
        if response.status_code == 412:
            response["Tus-Version"] = tus.VERSION
        response.setdefault("Cache-Control", "no-store")
        return response


class UploadsView(_Tus):
    """tus creation (with upload, with deferred length) and concatenation (``Upload-Concat: final;…``). The park,
    the file type by its name and the size are checked before any byte is read."""

    @extend_schema(
        operation_id="uploads_create", request={tus.OCTETS: OpenApiTypes.BINARY}, parameters=[
            TUS_HEADER,
            OpenApiParameter("Upload-Length", OpenApiTypes.INT, OpenApiParameter.HEADER,
                             description="the file's size in bytes (≤ Tus-Max-Size; 413 E9003 beyond)"),
            OpenApiParameter("Upload-Defer-Length", OpenApiTypes.STR, OpenApiParameter.HEADER, enum=["1"],
                             description="instead of Upload-Length: the size is given by a later PATCH"),
            OpenApiParameter("Upload-Metadata", OpenApiTypes.STR, OpenApiParameter.HEADER,
                             description="'key base64value' pairs, comma-separated: filename (required; §7 name "
                                         "….csv|xml|xlsx[.gz|.zip][.enc]), md5 (the whole file's, hex), park (code)"),
            OpenApiParameter("Upload-Concat", OpenApiTypes.STR, OpenApiParameter.HEADER,
                             description="'partial' for a part; 'final;<url> <url>' joins finished parts in order"),
            OpenApiParameter("Upload-Checksum", OpenApiTypes.STR, OpenApiParameter.HEADER,
                             description="with a body (creation-with-upload): '<sha256|md5|sha1> <base64 digest>'"),
        ],
        responses={201: OpenApiResponse(description="created: Location, Upload-Expires (and Upload-Offset with a "
                                                    "body)"),
                   409: error_response("E9022 the part's state"),
                   410: error_response("E9012 a part expired"),
                   412: error_response("E9001 Tus-Resumable is not 1.0.0"),
                   413: error_response("E9003 larger than Tus-Max-Size")})
    def post(self, request):
        tus.check_version(request.headers.get("Tus-Resumable"))
        concat, parts = tus.parse_concat(request.headers.get("Upload-Concat"))
        metadata = tus.parse_metadata(request.headers.get("Upload-Metadata"))
        length = None
        raw_length, defer = request.headers.get("Upload-Length"), request.headers.get("Upload-Defer-Length")
        if concat != "final":
            if raw_length is not None and defer is not None:
                raise CarbonParkError(errors.E9002, field="Upload-Defer-Length", header="Upload-Defer-Length",
                                      detail="give Upload-Length or Upload-Defer-Length, not both")
            if raw_length is not None:
                length = tus.non_negative("Upload-Length", raw_length)
            elif defer is None or defer.strip() != "1":
                raise CarbonParkError(errors.E9002, field="Upload-Length", header="Upload-Length",
                                      detail="Upload-Length (or Upload-Defer-Length: 1) is required")
        size = body_size(request)
        checksum = None
        if size != 0 and concat != "final":
            if _content_type(request) != tus.OCTETS:
                raise CarbonParkError(errors.E9014, field="Content-Type", content_type=_content_type(request)[:80])
            if size is not None and length is not None and size > length:
                raise CarbonParkError(errors.E9018, length=length)
            checksum = tus.parse_checksum(request.headers.get("Upload-Checksum"))
        upload = services.create_upload(actor=request.user, length=length, metadata=metadata, concat=concat,
                                        parts=parts)
        sent = False
        if size != 0 and concat != "final":
            sent = True
            try:
                upload = services.receive_chunk(actor=request.user, upload_id=upload.pk, offset=0,
                                                body=_Body(request), checksum=checksum, declared_size=size)
            except CarbonParkError:
                # The upload exists: its Location goes back with the offset it holds; the client resumes there.
                upload = Upload.objects.get(pk=upload.pk)
        response = HttpResponse(status=201)
        response["Location"] = location(upload.pk)
        if upload.state == Upload.State.RECEIVING:
            response["Upload-Expires"] = http_date(upload.expires_at.timestamp())
        if sent or concat == "final":
            response["Upload-Offset"] = str(upload.offset)
        return response


UploadState = inline_serializer("UploadState", {
    "id": serializers.UUIDField(), "park": serializers.CharField(), "filename": serializers.CharField(),
    "format": serializers.CharField(help_text="csv, xml or xlsx ('' for a part)"),
    "compression": serializers.CharField(help_text="'', gz or zip"), "encrypted": serializers.BooleanField(),
    "concat": serializers.CharField(help_text="'', partial or final"),
    "state": serializers.ChoiceField(Upload.State.values),
    "length": serializers.IntegerField(allow_null=True, help_text="declared size; null while deferred"),
    "bytesReceived": serializers.IntegerField(), "md5": serializers.CharField(help_text="declared, '' if none"),
    "receivedMd5": serializers.CharField(help_text="of the bytes received, once whole"),
    "createdBy": serializers.CharField(), "createdAt": serializers.DateTimeField(),
    "expiresAt": serializers.DateTimeField(allow_null=True, help_text="while receiving"),
    "receivedAt": serializers.DateTimeField(allow_null=True),
    "loadedAt": serializers.DateTimeField(allow_null=True),
    "load": inline_serializer("UploadLoad", {k: serializers.IntegerField() for k in COUNTS}),
    "error": inline_serializer("UploadError", {"code": serializers.CharField(), "message": serializers.CharField()},
                               allow_null=True),
    "report": inline_serializer("UploadReport", {
        "csv": serializers.CharField(allow_null=True, help_text="link to the rejection report as CSV"),
        "xlsx": serializers.CharField(allow_null=True, help_text="link to the rejection report as XLSX")}),
})


def as_json(upload: Upload) -> dict:
    counts = progress_of(upload) or {k: getattr(upload, k) for k in COUNTS}
    error = None
    if upload.error_code:
        from apps.core.errors import REGISTRY

        params = upload.error_params or {}
        if "message_en" in params:  # told by the loader in both languages
            from django.utils.translation import get_language

            message = params["message_en"] if (get_language() or "").startswith("en") else params["message_zh"]
        else:
            code = REGISTRY.get(upload.error_code)
            message = code.message(**params) if code else upload.error_code
        error = {"code": upload.error_code, "message": message}
    when = lambda t: t.isoformat() if t else None  # noqa: E731
    return {
        "id": str(upload.pk), "park": upload.park.code, "filename": upload.filename, "format": upload.kind,
        "compression": upload.compression, "encrypted": upload.encrypted, "concat": upload.concat,
        "state": upload.state, "length": upload.length, "bytesReceived": upload.offset, "md5": upload.md5,
        "receivedMd5": upload.received_md5, "createdBy": upload.created_by_label, "createdAt": when(upload.created_at),
        "expiresAt": when(upload.expires_at) if upload.state == Upload.State.RECEIVING else None,
        "receivedAt": when(upload.received_at), "loadedAt": when(upload.loaded_at), "load": counts,
        "error": error, "report": {fmt: f"{location(upload.pk)}/report.{fmt}" if getattr(upload, f"report_{fmt}")
                                   else None for fmt in ("csv", "xlsx")},
    }


def _gone(upload: Upload) -> bool:
    return upload.state == Upload.State.EXPIRED or (
        upload.state == Upload.State.RECEIVING and upload.expires_at <= timezone.now())


class UploadDetailView(_Tus):
    """One upload: HEAD (tus: the offset the platform holds), PATCH (append at that offset), DELETE (termination),
    GET (its state as JSON: bytes received, loading progress, counts, report)."""

    @extend_schema(operation_id="uploads_state", responses={200: UploadState, 404: error_response("E9011 no such "
                                                                                                   "upload of yours")})
    def get(self, request, upload_id):
        upload = selectors.get_upload(request.user, upload_id)
        return Response(as_json(upload))

    def head(self, request, upload_id):
        tus.check_version(request.headers.get("Tus-Resumable"))
        upload = selectors.get_upload(request.user, upload_id)
        if _gone(upload):
            raise CarbonParkError(errors.E9012, id=str(upload.pk))
        response = _tus_headers(HttpResponse(status=200), upload)
        if upload.length is None:
            response["Upload-Defer-Length"] = "1"
        else:
            response["Upload-Length"] = str(upload.length)
        if upload.metadata:
            response["Upload-Metadata"] = encode_metadata(upload.metadata)
        if upload.concat == Upload.Concat.PARTIAL:
            response["Upload-Concat"] = "partial"
        elif upload.concat == Upload.Concat.FINAL:
            response["Upload-Concat"] = "final;" + " ".join(location(p) for p in upload.parts)
        return response

    @extend_schema(
        operation_id="uploads_append", request={tus.OCTETS: OpenApiTypes.BINARY}, parameters=[
            TUS_HEADER,
            OpenApiParameter("Upload-Offset", OpenApiTypes.INT, OpenApiParameter.HEADER, required=True,
                             description="the offset HEAD answered (409 E9013 otherwise)"),
            OpenApiParameter("Upload-Checksum", OpenApiTypes.STR, OpenApiParameter.HEADER,
                             description="'<sha256|md5|sha1> <base64 digest>' of this chunk (460 E9016 on mismatch)"),
            OpenApiParameter("Upload-Length", OpenApiTypes.INT, OpenApiParameter.HEADER,
                             description="the size, once, for an upload created with Upload-Defer-Length"),
        ],
        responses={204: OpenApiResponse(description="appended: Upload-Offset, Upload-Expires"),
                   409: error_response("E9013 offset mismatch; E9015 another PATCH is writing"),
                   410: error_response("E9012 expired or deleted"),
                   412: error_response("E9001 Tus-Resumable is not 1.0.0"),
                   413: error_response("E9018 past the declared length; E9003 past Tus-Max-Size"),
                   460: error_response("E9016 the chunk's checksum does not match")})
    def patch(self, request, upload_id):
        tus.check_version(request.headers.get("Tus-Resumable"))
        if _content_type(request) != tus.OCTETS:
            raise CarbonParkError(errors.E9014, field="Content-Type", content_type=_content_type(request)[:80])
        offset = tus.non_negative("Upload-Offset", request.headers.get("Upload-Offset"))
        raw_length = request.headers.get("Upload-Length")
        length = tus.non_negative("Upload-Length", raw_length) if raw_length is not None else None
        checksum = tus.parse_checksum(request.headers.get("Upload-Checksum"))
        size = body_size(request)
        upload = selectors.get_upload(request.user, upload_id)
        upload = services.receive_chunk(actor=request.user, upload_id=upload.pk, offset=offset, body=_Body(request),
                                        checksum=checksum, length=length, declared_size=size)
        return _tus_headers(HttpResponse(status=204), upload)

    @extend_schema(operation_id="uploads_terminate", parameters=[TUS_HEADER],
                   responses={204: OpenApiResponse(description="removed with its bytes"),
                              409: error_response("E9022 queued for loading, loading or loaded: kept"),
                              412: error_response("E9001 Tus-Resumable is not 1.0.0")})
    def delete(self, request, upload_id):
        tus.check_version(request.headers.get("Tus-Resumable"))
        upload = selectors.get_upload(request.user, upload_id)
        services.terminate(actor=request.user, upload_id=upload.pk)
        return HttpResponse(status=204)


REPORT_TYPES = {"csv": "text/csv; charset=utf-8",
                "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


class UploadReportView(APIView):
    """The rejection report of a loaded upload (row, column, code, message), as CSV or XLSX."""

    access_model = Upload
    access_rules = {"GET": Action.PUSH}

    @extend_schema(operation_id="uploads_report", responses={
        (200, "text/csv"): OpenApiTypes.BINARY, (200, REPORT_TYPES["xlsx"]): OpenApiTypes.BINARY,
        404: error_response("E9011 no such upload of yours; E9023 no report (yet)")})
    def get(self, request, upload_id, fmt):
        upload = selectors.get_upload(request.user, upload_id)
        stored = getattr(upload, f"report_{fmt}", "") if fmt in REPORT_TYPES else ""
        path = Path(stored).resolve() if stored else None
        root = Path(settings.BATCH_REPORT_ROOT).resolve()
        if path is None or root not in path.parents or not path.is_file():
            raise CarbonParkError(errors.E9023, id=str(upload.pk), fmt=str(fmt)[:8])
        stem = Path(upload.filename).name.split(".")[0] or "upload"
        return FileResponse(open(path, "rb"), as_attachment=True, filename=f"{stem}-rejections.{fmt}",  # noqa: SIM115
                            content_type=REPORT_TYPES[fmt])
