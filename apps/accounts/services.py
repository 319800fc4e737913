"""Writes for parks, memberships and API tokens; each one audited."""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import transaction
from django.forms.models import model_to_dict
from guardian.models import UserObjectPermission

from apps.accounts import access
from apps.accounts.models import ApiToken, Membership, Park
from apps.core.services import bump_config_version, record_change

PARK_FIELDS = ["code", "name_zh", "name_en", "time_zone", "uscc", "address"]


def _snapshot(obj, fields) -> dict:
    return {k: v for k, v in model_to_dict(obj, fields=fields).items()}


@transaction.atomic
def save_park(*, actor, park: Park | None = None, reason: str = "", **fields) -> Park:
    """Create or change a park (R-5.2.3.2 d). Validated, audited, and seen by ingestion at once."""
    before = _snapshot(park, PARK_FIELDS) if park and park.pk else None
    park = park or Park()
    for key, value in fields.items():
        setattr(park, key, value)
    if park.uscc:
        from apps.core.validators import normalize_uscc

        park.uscc = normalize_uscc(park.uscc)
    park.full_clean()
    park.save()
    record_change(actor=actor, action="park.create" if before is None else "park.update", obj=park,
                  before=before, after=_snapshot(park, PARK_FIELDS), reason=reason, park_code=park.code)
    bump_config_version()
    return park


def _park_permissions() -> dict[str, Permission]:
    """codename -> the Park object permissions that mirror the seam's actions (``accounts.park_<action>``)."""
    ctype = ContentType.objects.get_for_model(Park)
    return {p.codename: p for p in Permission.objects.filter(content_type=ctype,
                                                              codename__startswith=access.PERMISSION_PREFIX)}


def _mirror(user, park: Park, role: str | None, perms: dict[str, Permission] | None = None) -> tuple[int, int]:
    """Make the user's guardian object permissions on ``park`` exactly those of ``role`` (None: none).
    Returns (added, removed). Two or three queries whatever the role."""
    perms = perms if perms is not None else _park_permissions()
    wanted = {access.permission_codename(a) for a in access.ROLES[role].actions} if role else set()
    have = UserObjectPermission.objects.filter(user=user, content_type=ContentType.objects.get_for_model(Park),
                                               object_pk=str(park.pk), permission__in=perms.values())
    held = dict(have.values_list("permission__codename", "pk"))
    extra = [pk for codename, pk in held.items() if codename not in wanted]
    removed = UserObjectPermission.objects.filter(pk__in=extra).delete()[0] if extra else 0
    missing = [perms[c] for c in sorted(wanted - held.keys())]
    if missing:
        # guardian's own rows, as assign_perm writes them; one INSERT for the lot
        UserObjectPermission.objects.bulk_create([
            UserObjectPermission(user=user, permission=perm, content_type=perm.content_type, object_pk=str(park.pk))
            for perm in missing])
    return len(missing), removed


@transaction.atomic
def set_membership(*, actor, user, park: Park, role: str, reason: str = "") -> Membership:
    """Grant a user a role in a park, or change it (R-7.3.3: roles, and permission operations are audit-
    logged). The membership is the one source of truth; django-guardian's per-park object permissions
    (``accounts.park_<action>``) follow it in the same transaction, so guardian's pages and DRF's object
    filters agree with ``apps.accounts.access``."""
    if role not in Membership.Role.values:
        raise ValidationError({"role": f"unknown role {role!r}: one of {', '.join(Membership.Role.values)}"})
    membership = Membership.objects.select_for_update().filter(user=user, park=park).first()
    before = None if membership is None else {"user": user.get_username(), "role": membership.role}
    if membership is None:
        membership = Membership.objects.create(user=user, park=park, role=role)
    elif membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    _mirror(user, park, role)
    record_change(actor=actor, action="membership.grant", obj=membership, before=before,
                  after={"user": user.get_username(), "role": role}, reason=reason, park_code=park.code)
    access.forget(user)
    return membership


@transaction.atomic
def revoke_membership(*, actor, user, park: Park, reason: str = "") -> bool:
    """Take a user's role in a park away, with its guardian object permissions, in one transaction
    (R-7.3.3, audit-logged). Returns False when the user had no role there (nothing recorded)."""
    membership = Membership.objects.select_for_update().filter(user=user, park=park).first()
    if membership is None:
        _mirror(user, park, None)  # stray rows never outlive the membership
        return False
    before = {"user": user.get_username(), "role": membership.role}
    membership_pk = membership.pk
    membership.delete()
    _mirror(user, park, None)
    record_change(actor=actor, action="membership.revoke", object_type=Membership._meta.label_lower,
                  object_id=str(membership_pk), before=before, after=None, reason=reason, park_code=park.code)
    access.forget(user)
    return True


@transaction.atomic
def sync_park_permissions(*, park: Park | None = None) -> tuple[int, int]:
    """Repair django-guardian's per-park object permissions from the memberships (R-7.3.3): rows missing
    are added, rows no membership explains are removed. Idempotent. Returns (added, removed)."""
    perms = _park_permissions()
    if len(perms) != len(access.Action):
        raise ImproperlyConfigured("the park permissions are missing: run `manage.py migrate` first")
    ctype = ContentType.objects.get_for_model(Park)
    members = Membership.objects.select_related("user", "park")
    stray = UserObjectPermission.objects.filter(content_type=ctype, permission__in=perms.values())
    if park is not None:
        members = members.filter(park=park)
        stray = stray.filter(object_pk=str(park.pk))
    added = removed = 0
    seen = set()
    for m in members:
        a, r = _mirror(m.user, m.park, m.role, perms)
        added, removed = added + a, removed + r
        seen.add((m.user_id, str(m.park_id)))
    orphans = [pk for pk, user_id, object_pk in stray.values_list("pk", "user_id", "object_pk")
               if (user_id, object_pk) not in seen]
    if orphans:
        removed += UserObjectPermission.objects.filter(pk__in=orphans).delete()[0]
    return added, removed


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def issue_token(*, actor, park: Park, name: str, role: str = ApiToken.Role.INTEGRATOR) -> tuple[ApiToken, str]:
    """Issue an API token scoped to one park (interfaces.md §3). Returns the token and its key, which
    is shown this once: only its SHA-256 digest is kept."""
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    key = f"cp_{prefix}_{secret}"
    token = ApiToken(name=name, park=park, role=role, prefix=prefix, digest=hash_key(key),
                     created_by=actor if getattr(actor, "pk", None) and hasattr(actor, "get_username") else None)
    token.full_clean(exclude=["prefix", "digest"])
    token.save()
    record_change(actor=actor, action="token.issue", obj=token, after={"name": name, "role": role},
                  park_code=park.code)
    return token, key


def _forget_tokens_on_commit() -> None:
    """This process's token cache (apps.accounts.authentication) forgets withdrawn or changed tokens at once;
    other processes within settings.API_TOKEN_CACHE_SECONDS."""
    from apps.accounts.authentication import forget_tokens

    forget_tokens()  # now, for this transaction's own requests (and tests that never commit) …
    transaction.on_commit(forget_tokens)  # … and at commit, in case a concurrent request cached it meanwhile


@transaction.atomic
def update_token(*, actor, token: ApiToken, role: str, is_active: bool, reason: str = "") -> ApiToken:
    """Change a token's role, or withdraw it (R-7.3.3: permission operations are audit-logged)."""
    if not is_active and token.is_active:
        return revoke_token(actor=actor, token=token, reason=reason)
    before = {"role": token.role, "is_active": token.is_active}
    token.role, token.is_active = role, is_active
    token.full_clean(exclude=["prefix", "digest"])
    token.save(update_fields=["role", "is_active"])
    _forget_tokens_on_commit()
    record_change(actor=actor, action="token.update", obj=token, before=before,
                  after={"role": role, "is_active": is_active}, reason=reason, park_code=token.park.code)
    return token


@transaction.atomic
def revoke_token(*, actor, token: ApiToken, reason: str = "") -> ApiToken:
    """Withdraw a token at once (R-7.1.2: authentication and permission control on every interface)."""
    token.is_active = False
    token.save(update_fields=["is_active"])
    _forget_tokens_on_commit()
    record_change(actor=actor, action="token.revoke", obj=token, before={"is_active": True},
                  after={"is_active": False}, reason=reason, park_code=token.park.code)
    return token


# --- log-ins (issue #8 deliverable 4): each one an audit record in the platform's chain --------------------


def _login_context(request) -> dict:
    if request is None:
        return {}
    from apps.accounts.auth_events import client_ip

    return {"ip": client_ip(request), "user_agent": request.META.get("HTTP_USER_AGENT", "")[:200],
            "path": request.path[:200]}


def record_login(*, user, request=None):
    """A user logged in (R-7.1.2: authentication on every interface; R-7.3.2: who did what, when)."""
    return record_change(actor=user, action="auth.login", obj=user, after=_login_context(request))


def record_login_failure(*, username: str, request=None, locked_out: bool = False):
    """A log-in was refused: wrong password, unknown or inactive user, or a locked-out name and address
    (R-7.1.2). The password is never recorded; the name as typed is (it may be a mistyped password)."""
    username = (username or "")[:150]
    return record_change(actor=f"anonymous:{username}" if username else "anonymous",
                         action="auth.login_refused" if locked_out else "auth.login_failed",
                         object_type="auth.user", object_id=username[:64], after=_login_context(request))


def record_lockout(*, username: str, request=None):
    """django-axes locked a user name and address out after the configured failures (R-7.1.2)."""
    from django.conf import settings

    username = (username or "")[:150]
    return record_change(actor=f"anonymous:{username}" if username else "anonymous", action="auth.lockout",
                         object_type="auth.user", object_id=username[:64],
                         after={**_login_context(request), "failure_limit": settings.AXES_FAILURE_LIMIT,
                                "cooloff_minutes": settings.AXES_COOLOFF_TIME.total_seconds() / 60})


def record_logout(*, user, request=None, reason: str = ""):
    """A user logged out, or the session ended for being idle (``reason``)."""
    if user is None or not getattr(user, "pk", None):
        return None
    return record_change(actor=user, action="auth.logout", obj=user, after=_login_context(request), reason=reason)


def record_audit_export(*, actor, filters: dict, file_format: str, rows: int | None = None):
    """An auditor exported the audit trail (R-7.3.2: reading the trail out is itself on the trail)."""
    return record_change(actor=actor, action="audit.export", object_type="core.auditentry", object_id="",
                         after={"format": file_format, "filters": filters, **({"rows": rows} if rows is not None
                                                                               else {})},
                         park_code=filters.get("park", ""))
