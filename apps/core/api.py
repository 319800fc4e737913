"""DRF glue shared by every app: the error shape of interfaces.md §3 and pagination."""

from __future__ import annotations

import logging
import sys

import psycopg
from django import db
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, pagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core import errors
from apps.core.db import database_unavailable
from apps.core.text import pg_safe

log = logging.getLogger(__name__)

# Seconds a client should wait before retrying while the database is unreachable: long enough not to
# hammer a restarting server, short enough that a supervisor's restart (seconds) is not noticed.
RETRY_AFTER_S = 5
_UNSTORABLE = (db.DataError, psycopg.DataError, UnicodeEncodeError)


def error_response(err: errors.ErrorCode, *, field: str | None = None, status: int | None = None,
                   **params) -> JsonResponse:
    """The error shape of interfaces.md §3 outside DRF (middleware, Django's error handlers)."""
    body = {"code": err.code, "message": err.message(**params)}
    if field:
        body["field"] = field
    response = JsonResponse(body, status=status or err.http_status, json_dumps_params={"ensure_ascii": False})
    response["Content-Length"] = str(len(response.content))
    return response


def _unavailable_body(exc: BaseException) -> dict:
    first_line = (str(exc).strip().splitlines() or [""])[0]
    log.warning("database unavailable, answered 503: %s: %s", type(exc).__name__, first_line)
    return {"code": errors.E1015.code, "message": errors.E1015.message(retry_after=RETRY_AFTER_S)}


def unavailable_response(exc: BaseException) -> JsonResponse:
    response = JsonResponse(_unavailable_body(exc), status=503, json_dumps_params={"ensure_ascii": False})
    response["Retry-After"] = str(RETRY_AFTER_S)
    return response


def _unstorable_detail(exc: BaseException) -> str:
    diag = getattr(getattr(exc, "__cause__", None), "diag", None) or getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return pg_safe(primary or type(exc).__name__)


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
    if database_unavailable(exc):
        return Response(_unavailable_body(exc), status=503, headers={"Retry-After": str(RETRY_AFTER_S)})
    if isinstance(exc, _UNSTORABLE):
        # The last guard: a value PostgreSQL refuses (out of range, NUL in jsonb …) is the sender's to
        # fix, not a server error. Explicit checks name the field; this one names what the database said.
        log.warning("a value of %s was refused by the database", context["request"].path, exc_info=exc)
        err = errors.E1016
        return Response({"code": err.code, "message": err.message(field="request", detail=_unstorable_detail(exc))},
                        status=err.http_status)
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


def server_error(request, *args, **kwargs):
    """Django's handler500: called while the exception is being handled, so it can tell a database that
    is down (503 E1015, Retry-After) from a bug. API clients get JSON (E1017), never an HTML page."""
    exc = sys.exc_info()[1]
    if exc is not None and database_unavailable(exc):
        return unavailable_response(exc)
    if request.path_info.startswith("/api/") or "html" not in request.META.get("HTTP_ACCEPT", ""):
        return error_response(errors.E1017)
    from django.views.defaults import server_error as html_server_error

    return html_server_error(request)
