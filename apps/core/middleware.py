"""The portal speaks Chinese until its user picks another language; the API follows Accept-Language."""

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


class RequestGuardMiddleware:
    """What must hold before any view reads a request (interfaces.md §3; issue #7):

    - a body sent with ``Transfer-Encoding: chunked`` is read here, under the same limit as a declared
      length, and refused with 413 (E1004) as soon as it passes the limit, without reading the rest;
      Django itself reads such a body as empty (it only trusts CONTENT_LENGTH);
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
