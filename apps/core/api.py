"""DRF glue shared by every app: the error shape of interfaces.md §3 and pagination."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, pagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core import errors


def _detail_text(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {_detail_text(v)}" for k, v in detail.items())
    if isinstance(detail, list):
        return "; ".join(_detail_text(v) for v in detail)
    return str(detail)


def exception_handler(exc, context):
    """Every API error leaves as {"code", "message"[, "field"]} with a code from the published table."""
    if isinstance(exc, errors.CarbonParkError):
        return Response(exc.as_dict(), status=exc.http_status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = _detail_text(getattr(exc, "detail", ""))
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        err, params = errors.E1007, {}
    elif isinstance(exc, exceptions.PermissionDenied):
        err, params = errors.E1008, {"detail": detail}
    elif isinstance(exc, exceptions.NotFound):
        err, params = errors.E1010, {"detail": detail}
    elif isinstance(exc, exceptions.MethodNotAllowed):
        err, params = errors.E1012, {"method": context["request"].method}
    elif isinstance(exc, exceptions.Throttled):
        err, params = errors.E1013, {"wait": int(exc.wait or 1)}
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        err, params = errors.E1006, {"content_type": getattr(exc, "media_type", "")}
    elif isinstance(exc, exceptions.ParseError):
        err, params = errors.E1001, {"detail": detail}
    else:
        err, params = errors.E1011, {"detail": detail}
    body = {"code": err.code, "message": err.message(**params)}
    if isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, dict) and exc.detail:
        body["field"] = next(iter(exc.detail))
        body["errors"] = exc.detail
    response.data = body
    return response


class DefaultPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 1000
