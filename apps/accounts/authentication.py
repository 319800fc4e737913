"""`Authorization: Token <key>` for devices and integrators (interfaces.md §3)."""

from __future__ import annotations

import hmac
from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

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


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header.")
        key = header[1].decode("ascii", "replace")
        parts = key.split("_", 2)
        if len(parts) != 3 or parts[0] != "cp" or "\x00" in key:  # NUL would reach the query (issue #7)
            raise exceptions.AuthenticationFailed("Invalid token.")
        token = ApiToken.objects.select_related("park").filter(prefix=parts[1], is_active=True).first()
        if token is None or not hmac.compare_digest(token.digest, hash_key(key)):
            raise exceptions.AuthenticationFailed("Invalid token.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5):
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return TokenPrincipal(token), token

    def authenticate_header(self, request):
        return self.keyword
