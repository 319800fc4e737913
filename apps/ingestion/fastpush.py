"""A short path for the devices' common request: a token-authenticated ``POST /api/v1/readings`` of plain JSON
(issue #9 deliverable 6: the cost of one small request).

Django's handler and DRF spent about 0.35 ms of CPU on a one-reading push beside the 0.5 ms of the push itself
(bench/README.md): exception wrappers around each middleware, URL resolution, DRF's request wrapper, its
negotiation, its template response. This path does what they do for this one request, with the same pieces:
the same middleware instances' request and response phases (security, language, common, framing, content
security policy, history context), the same token authentication, the park-access seam
(``access.park_ids(…, PUSH)``, as apps.accounts.permissions.ParkAccess and ReadingsView do), ingest_readings as
the one way in, DRF's JSON renderer and its Vary/Allow headers, and Django's log line for a 4xx answer.

Whatever is not the common case goes to the full stack (apps.core.handlers' token API handler) *before anything
is written*, which then answers it exactly as before: a query string, another Accept or Content-Type, a chunked
or empty or oversized body, an encrypted envelope, an Idempotency-Key, JSON the fast decoder refuses, too many
records, a token refused, no park to push to, a middleware answering by itself (an HTTPS redirect, a bad Host).
An exception inside ingest_readings is answered as DRF's view answers it (the API's exception handler: an
E-code, the database unreachable → 503 with Retry-After), and any other as Django answers an uncaught one (its
handler500, apps.core.api.server_error: 500 E1017, logged, ``got_request_exception`` sent): once ingest_readings
has been called the request is never run again.
tests/test_small_requests.py compares the two paths' answers.
"""

from __future__ import annotations

import contextlib
import io
import logging

from django.conf import settings
from django.core import signals
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpResponse
from django.utils.cache import patch_vary_headers
from django.utils.log import log_response
from django.utils.translation import get_language

log = logging.getLogger(__name__)

PATH = "/api/v1/readings"
# The token API stack this path stands for (settings.MIDDLEWARE without apps.core.handlers.PORTAL_ONLY), in order.
# When the settings say otherwise, the short path steps aside: every request takes the full stack.
STACK = (
    "django.middleware.security.SecurityMiddleware",
    "apps.core.middleware.RequestGuardMiddleware",
    "apps.core.middleware.PortalLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.core.middleware.CSPMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
)
ACCEPTS = frozenset({"*/*", "application/json"})  # what DRF answers with its JSON renderer (ReadingsView)


def _unused(request):  # the middleware instances below are only asked for their request and response phases
    raise AssertionError("not called")


class FastPush:
    """WSGI callable for ``POST /api/v1/readings`` with a token; ``fallback``: the full stack's handler."""

    def __init__(self, fallback, stack: list[str]):
        from django.middleware.clickjacking import XFrameOptionsMiddleware
        from django.middleware.common import CommonMiddleware
        from django.middleware.security import SecurityMiddleware
        from rest_framework.renderers import JSONRenderer

        from apps.accounts.authentication import ApiTokenAuthentication
        from apps.core.middleware import CSPMiddleware, PortalLocaleMiddleware
        from apps.ingestion.api import ReadingsView

        self.fallback = fallback
        self.enabled = tuple(stack) == STACK
        if not self.enabled:
            log.warning("the short path of POST %s is off: the token API middleware is not the one it stands for",
                        PATH)
        self.security = SecurityMiddleware(_unused)
        self.locale = PortalLocaleMiddleware(_unused)
        self.common = CommonMiddleware(_unused)
        self.xframe = XFrameOptionsMiddleware(_unused)
        self.csp = CSPMiddleware(_unused)
        self.auth = ApiTokenAuthentication()
        self.render = JSONRenderer().render
        view = ReadingsView()
        view.setup(None)  # as as_view() does: HEAD answered by get
        self.allow = ", ".join(view.allowed_methods)

    def __call__(self, environ, start_response):
        if not (self.enabled and self._plain(environ)):
            return self.fallback(environ, start_response)
        signals.request_started.send(sender=self.__class__, environ=environ)
        response = None
        try:
            response = self._push(environ)
        finally:
            if response is None:  # handed over: what was read is read again, connections go back as at an end
                signals.request_finished.send(sender=self.__class__)
        if response is None:
            return self.fallback(environ, start_response)
        status = f"{response.status_code} {response.reason_phrase}"
        start_response(status, [*response.items(), *(("Set-Cookie", c.output(header=""))
                                                     for c in response.cookies.values())])
        return response  # its close() sends request_finished (the pool gets its connection back), as Django's

    @staticmethod
    def _plain(environ) -> bool:
        length = environ.get("CONTENT_LENGTH", "")
        return (environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO") == PATH
                and not environ.get("QUERY_STRING") and environ.get("HTTP_ACCEPT", "*/*") in ACCEPTS
                and environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower() == "application/json"
                and "HTTP_TRANSFER_ENCODING" not in environ and "HTTP_IDEMPOTENCY_KEY" not in environ
                and length.isdigit() and 0 < int(length) <= settings.DATA_UPLOAD_MAX_MEMORY_SIZE)

    def _push(self, environ):
        """The answer, or None to hand the request to the full stack (nothing written)."""
        from simple_history.models import HistoricalRecords

        from apps.accounts import access
        from apps.accounts.access import Action
        from apps.ingestion.jsonbody import decode_batch
        from apps.ingestion.services import ingest_readings

        body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        environ["wsgi.input"] = io.BytesIO(body)  # for the full stack, should it take over
        try:
            request = WSGIRequest(dict(environ, **{"wsgi.input": io.BytesIO(body)}))
            if len(request.body) != int(environ["CONTENT_LENGTH"]) or body[:4] == b"CPE1":
                return None
            for mw in (self.security, self.locale, self.common, self.csp):
                if mw.process_request(request) is not None:
                    return None
            records = decode_batch(body)
            if isinstance(records, dict):
                records = [records]
            if not isinstance(records, list) or len(records) > settings.READINGS_MAX_BATCH:
                return None
            found = self.auth.authenticate(request)
            if found is None:
                return None
            user, token = found
            request.user, request.auth = user, token  # as DRF's Request leaves them on Django's request
            parks = access.park_ids(user, Action.PUSH)  # None: every park
            if parks is not None and not parks:
                return None
        except Exception:  # noqa: BLE001 - refused, or not the common case: the full stack answers it
            return None
        HistoricalRecords.context.request = request
        try:
            result = ingest_readings(records, channel="http", actor=user, parks=parks)
            return self._answer(request, result.response(get_language() or "zh-hans"), result.http_status)
        except Exception as exc:  # noqa: BLE001 - answered here: the request is never run twice
            # What DRF's view answers for it (the API's exception handler: a code of ours, the database
            # unreachable → 503 with Retry-After, a value the database refuses); anything else as Django
            # answers an uncaught exception (handler500: 500 E1017, logged).
            from apps.core.api import exception_handler

            answer = exception_handler(exc, {"request": request, "view": None})
            if answer is None:
                return self._finish(request, response_for_exception(request, exc))
            return self._answer(request, answer.data, answer.status_code, answer.items())
        finally:
            with contextlib.suppress(AttributeError):
                del HistoricalRecords.context.request

    def _answer(self, request, data, status: int, headers=()):
        """DRF's JSON answer as ReadingsView's would leave the token API stack."""
        response = HttpResponse(self.render(data), status=status, content_type="application/json")
        for name, value in headers:
            if name.lower() != "content-type":
                response[name] = value
        response["Allow"] = self.allow
        patch_vary_headers(response, ("Accept",))
        return self._finish(request, response)

    def _finish(self, request, response):
        """The token API stack's response phases, and Django's log line for a 4xx or 5xx answer."""
        for mw in (self.csp, self.xframe, self.common, self.locale, self.security):
            response = mw.process_response(request, response)
        response._resource_closers.append(request.close)
        if response.status_code >= 400:
            log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
        return response
