"""`Authorization: Token <key>` for devices and integrators (interfaces.md §3)."""

from __future__ import annotations

import hmac
import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import HTTP_HEADER_ENCODING, authentication, exceptions

from apps.accounts.models import ApiToken
from apps.accounts.services import hash_key


class TokenPrincipal:
    """What request.user is for a token: authenticated, scoped to the token's park, never staff."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, token: ApiToken):
        self.token = token
        self.park = token.park

    def get_username(self) -> str:
        return self.token.audit_label

    @property
    def audit_label(self) -> str:
        return self.token.audit_label

    def __str__(self):
        return self.token.audit_label


# Tokens found valid lately, by the SHA-256 digest of their key: {digest: (valid until, token)}, per process. A
# device posting one reading per request would otherwise pay a query (and the ORM's compilation of it) per request.
# A token withdrawn in this process is forgotten at its commit (``forget_tokens``); one withdrawn elsewhere is
# refused within API_TOKEN_CACHE_SECONDS (settings; 0 turns the cache off). Only successes are kept.
_VALID: dict[str, tuple[float, ApiToken]] = {}
_VALID_MAX = 10_000  # distinct tokens kept per process at most (then the cache starts over)


def forget_tokens() -> None:
    """Drop every cached token of this process (after a token is withdrawn or changed)."""
    _VALID.clear()


def _lookup(prefix: str, digest: str) -> ApiToken | None:
    ttl = settings.API_TOKEN_CACHE_SECONDS
    clock = time.monotonic()
    hit = _VALID.get(digest) if ttl > 0 else None
    if hit is not None and hit[0] > clock:
        return hit[1]
    token = ApiToken.objects.select_related("park").filter(prefix=prefix, is_active=True).first()
    if token is None or not hmac.compare_digest(token.digest, digest):
        _VALID.pop(digest, None)
        return None
    if ttl > 0:
        if len(_VALID) >= _VALID_MAX:
            _VALID.clear()
        _VALID[digest] = (clock + ttl, token)
    return token


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request):
        # What DRF's get_authorization_header reads, from META itself: request.headers would build the mapping of
        # every header of the request for this one (a one-reading push's CPU, issue #9 deliverable 6).
        header = request.META.get("HTTP_AUTHORIZATION", b"")
        if isinstance(header, str):
            header = header.encode(HTTP_HEADER_ENCODING)
        header = header.split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header.")
        key = header[1].decode("ascii", "replace")
        parts = key.split("_", 2)
        if len(parts) != 3 or parts[0] != "cp" or "\x00" in key:  # NUL would reach the query (issue #7)
            raise exceptions.AuthenticationFailed("Invalid token.")
        token = _lookup(parts[1], hash_key(key))
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5):
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now  # the cached copy too: one update per 5 minutes, not one per request
        return TokenPrincipal(token), token

    def authenticate_header(self, request):
        return self.keyword
