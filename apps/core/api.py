"""DRF glue shared by every app: the error shape of interfaces.md §3 and pagination."""

from __future__ import annotations

from django.conf import settings
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


def public_url(request, query: str | None = None) -> str:
    """A link to this endpoint that never echoes the request's Host header (a hostile Host would otherwise
    be handed back to every client that follows ``next``): absolute under PUBLIC_BASE_URL when it is set,
    else relative to the server (``/api/v1/...?page=2``), which clients resolve against the URL they called."""
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    path = request.path
    if query is None:
        query = request.META.get("QUERY_STRING", "")
    return f"{base}{path}?{query}" if query else f"{base}{path}"


class DefaultPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 1000

    def _link(self, number: int | None) -> str:
        params = self.request.GET.copy()
        if number is None or number == 1:
            params.pop(self.page_query_param, None)
        else:
            params[self.page_query_param] = number
        return public_url(self.request, params.urlencode())

    def get_next_link(self):
        return self._link(self.page.next_page_number()) if self.page.has_next() else None

    def get_previous_link(self):
        return self._link(self.page.previous_page_number()) if self.page.has_previous() else None

    def get_paginated_response_schema(self, schema):
        answer = super().get_paginated_response_schema(schema)
        for key, page in (("next", 4), ("previous", 2)):
            answer["properties"][key].update(format="uri-reference", example=f"/api/v1/sources/?page={page}")
        return answer
