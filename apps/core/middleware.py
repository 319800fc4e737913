"""The portal speaks Chinese until its user picks another language; the API follows Accept-Language."""

from csp.middleware import CSPMiddleware as BaseCSPMiddleware
from django.conf import settings
from django.middleware.locale import LocaleMiddleware
from django.utils import translation


class PortalLocaleMiddleware(LocaleMiddleware):
    """Django's LocaleMiddleware follows the browser's Accept-Language before LANGUAGE_CODE, so an
    English browser would open the portal in English. Park staff expect Chinese: on portal pages only
    the language cookie (set by the language menu) overrides the default. API clients keep the
    standard negotiation, so integrators get messages in the language they ask for."""

    def process_request(self, request):
        if request.path_info.startswith("/api/"):
            return super().process_request(request)
        chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        language = chosen if chosen and translation.check_for_language(chosen) else settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()


UPLOADS_PATH = "/api/v1/uploads/"


class RequestGuardMiddleware:
    """What must hold before any view reads a request (interfaces.md §3; issue #7):

    - a body sent with ``Transfer-Encoding: chunked`` is read here, under the same limit as a declared
      length, and refused with 413 (E1004) as soon as it passes the limit, without reading the rest;
      Django itself reads such a body as empty (it only trusts CONTENT_LENGTH); the resumable uploads'
      bodies (/api/v1/uploads/) are left to their view, which streams them to disk;
    - a query parameter holding NUL (which PostgreSQL refuses in text) is refused with E1009 before it
      can reach a query;
    - a database that cannot be reached answers 503 (E1015) with Retry-After, as JSON, from any view.
    """

    CHUNK = 64 * 1024

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        refusal = self._read_chunked(request) or self._check_query(request)
        if refusal is not None:
            return refusal
        return self.get_response(request)

    def _read_chunked(self, request):
        environ = request.environ
        if request.path_info.startswith(UPLOADS_PATH):
            return None  # resumable uploads stream their bodies to disk themselves (apps/uploads)
        if environ.get("CONTENT_LENGTH") or "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            return None
        if not environ.get("wsgi.input_terminated"):  # a server that cannot say where the body ends
            return None
        from io import BytesIO

        from django.core.handlers.wsgi import LimitedStream

        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        stream, parts, size = environ["wsgi.input"], [], 0
        while True:
            part = stream.read(self.CHUNK)
            if not part:
                break
            size += len(part)
            if size > limit:
                from apps.core.api import error_response
                from apps.core.errors import E1004

                response = error_response(E1004, limit=limit)
                response["Connection"] = "close"
                return response
            parts.append(part)
        body = b"".join(parts)
        environ["CONTENT_LENGTH"] = str(len(body))
        request._stream = LimitedStream(BytesIO(body), len(body))
        return None

    @staticmethod
    def _check_query(request):
        from apps.core.text import is_storable

        for key, values in request.GET.lists():
            if not is_storable(key) or not all(is_storable(v) for v in values):
                from apps.core.api import error_response
                from apps.core.errors import E1009
                from apps.core.text import pg_safe

                return error_response(E1009, field=pg_safe(key), param=key,
                                      detail="NUL characters cannot be used (U+0000)")
        return None

    def process_exception(self, request, exception):
        from apps.core.api import unavailable_response
        from apps.core.db import database_unavailable

        if database_unavailable(exception):
            return unavailable_response(exception)
        return None



class CSPMiddleware(BaseCSPMiddleware):
    """django-csp's middleware, with the headers built once per process for what nearly every answer carries: the
    settings' policy, no nonce used by the page, no per-view override (issue #9 deliverable 6: django-csp built
    both headers, deep-copying their parts, on every request, about a tenth of a one-reading push's CPU). Anything
    else (a nonce, ``@csp_update`` ...) is built per response as django-csp does; changed settings are noticed.
    ``process_response`` is django-csp 4.0's, with ``_policy`` in place of its ``build_policy(**asdict(parts))``."""

    def __init__(self, get_response):
        super().__init__(get_response)
        self._built = {}  # report_only -> (the settings' policy object it was built from, header)

    def _policy(self, request, response, report_only: bool) -> str:
        from csp.utils import build_policy

        parts = self.get_policy_parts(request=request, response=response, report_only=report_only)
        if parts.config is not None or parts.update is not None or parts.replace is not None or parts.nonce:
            return build_policy(config=parts.config, update=parts.update, replace=parts.replace, nonce=parts.nonce,
                                report_only=report_only)
        policy = getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY" if report_only else "CONTENT_SECURITY_POLICY",
                         None)
        held = self._built.get(report_only)
        if held is None or held[0] is not policy:
            held = self._built[report_only] = (policy, build_policy(report_only=report_only))
        return held[1]

    def process_response(self, request, response):
        import http.client

        from csp.constants import HEADER, HEADER_REPORT_ONLY
        from csp.middleware import CheckableLazyObject

        if response.status_code in (http.client.INTERNAL_SERVER_ERROR, http.client.NOT_FOUND) and settings.DEBUG:
            return response
        for report_only, header, exempt, name in (
                (False, HEADER, "_csp_exempt", "CONTENT_SECURITY_POLICY"),
                (True, HEADER_REPORT_ONLY, "_csp_exempt_ro", "CONTENT_SECURITY_POLICY_REPORT_ONLY")):
            csp = self._policy(request, response, report_only)
            if csp:
                prefixes = (getattr(settings, name, None) or {}).get("EXCLUDE_URL_PREFIXES", None) or ()
                if (header not in response and getattr(response, exempt, False) is False
                        and not request.path_info.startswith(tuple(prefixes))):
                    response[header] = csp
        if getattr(request, "_csp_nonce", None) is None:
            request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response
