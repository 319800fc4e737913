"""django-simple-history glue: only a real user is recorded as history_user; an API token's principal
is named in the audit trail instead (apps.core.services.record_change)."""

from django.contrib.auth.models import AbstractBaseUser


def history_user(request=None, **kwargs):
    user = getattr(request, "user", None)
    return user if isinstance(user, AbstractBaseUser) and user.pk else None
