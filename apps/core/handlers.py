"""The WSGI application gunicorn serves (carbonpark/wsgi.py): Django's, with a shorter middleware stack for
requests that carry an API token (issue #9 deliverable 6: the cost of one small request).

A device posting one reading per request went through every middleware of the portal: static files
(WhiteNoise), sessions, CSRF, the session's user, messages, idle-session log-out and django-axes' lock-out.
None of them can apply to ``/api/…`` with ``Authorization: Token …``: DRF authenticates such a request by its
token alone (apps.accounts.authentication answers it or refuses it, never falls back to a session cookie), DRF's
views are CSRF-exempt by design (only its session authentication enforces CSRF), and log-in lock-outs concern
the portal's log-in form. What does apply stays, in the same order: the security headers, the request guard
(chunked bodies, NUL in query strings, database down → 503), the API's language negotiation, common URL
handling, framing refusal, the content security policy, and the history middleware (a token's changes to
sources and rules are attributed to it).
"""

from __future__ import annotations

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

# Middleware of the portal's sessions and log-ins: never consulted for a token-authenticated API request.
PORTAL_ONLY = frozenset({
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "apps.accounts.middleware.IdleSessionMiddleware",
    "axes.middleware.AxesMiddleware",
})


def token_api_request(environ) -> bool:
    """``/api/…`` with ``Authorization: Token …`` (the scheme apps.accounts.authentication answers), and the
    third-party platforms' open API (its own signed auth and bearer tokens: no session, no portal middleware)."""
    path = environ.get("PATH_INFO", "")
    return path.startswith("/api/") and (environ.get("HTTP_AUTHORIZATION", "")[:6].lower() == "token "
                                         or path.startswith("/api/v1/open/"))


class TokenApiHandler(WSGIHandler):
    """Django's WSGI handler over settings.MIDDLEWARE without PORTAL_ONLY (its own middleware lists, so the
    portal's handler keeps CSRF's view checks and the rest)."""

    def load_middleware(self, is_async=False):
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = [m for m in full if m not in PORTAL_ONLY]
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


class Application:
    """Token API requests to the short stack, everything else to Django's full one. ``short_paths``: for a token
    API path, a factory ``(token API handler, its middleware list) -> WSGI callable`` that serves the path's
    common case itself and hands everything else to that handler (carbonpark/wsgi.py: POST /api/v1/readings)."""

    def __init__(self, short_paths: dict | None = None):
        self.portal = WSGIHandler()
        self.token_api = TokenApiHandler()
        stack = [m for m in settings.MIDDLEWARE if m not in PORTAL_ONLY]
        self.short = {path: make(self.token_api, stack) for path, make in (short_paths or {}).items()}

    def __call__(self, environ, start_response):
        if not token_api_request(environ):
            return self.portal(environ, start_response)
        return self.short.get(environ.get("PATH_INFO"), self.token_api)(environ, start_response)
