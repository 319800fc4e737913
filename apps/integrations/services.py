"""Third-party platforms: registration, subscriptions, suspension and resumption (interfaces.md §6, R-7.4).

Views, admin pages and tasks adapt; these functions validate, write and audit."""

from __future__ import annotations

import ipaddress
import logging
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.accounts import access
from apps.accounts.access import Action
from apps.core.crypto import open_secret, seal_secret
from apps.core.errors import CarbonParkError
from apps.core.services import record_change
from apps.core.validators import normalize_uscc, uscc_is_valid
from apps.integrations import errors
from apps.integrations.models import Platform

log = logging.getLogger(__name__)

PLATFORM_FIELDS = ["name", "uscc", "base_url", "backup_url", "ip_whitelist", "alert_email", "alert_phone",
                   "callback_url", "certified", "rate_limit"]


def _context(app_id: str) -> str:
    return f"integrations.platform:{app_id}"


def platform_secret(platform: Platform) -> bytes:
    """The platform's secret, opened from its sealed form (R-7.4.4.1: never stored in plain text)."""
    return open_secret(platform.secret_sealed, _context(platform.app_id))


def clean_whitelist(entries) -> list[str]:
    """Addresses and CIDR networks, normalised (``203.0.113.7`` → ``203.0.113.7/32``); E7416 for anything else."""
    if isinstance(entries, str):
        entries = [e for e in entries.replace(",", "\n").split() if e]
    if not isinstance(entries, (list, tuple)) or len(entries) > 100:
        raise CarbonParkError(errors.E7416, field="ip_whitelist", value=str(entries)[:60])
    out = []
    for entry in entries:
        try:
            if not isinstance(entry, str) or "\x00" in entry:
                raise ValueError
            out.append(str(ipaddress.ip_network(entry.strip(), strict=False)))
        except ValueError:
            raise CarbonParkError(errors.E7416, field="ip_whitelist", value=str(entry)[:60]) from None
    return out


def _check_url(value: str, field: str) -> str:
    value = (value or "").strip()
    if not value:
        return ""
    scheme = value.split(":", 1)[0].lower()
    if scheme != "https" and not (scheme == "http" and settings.OPEN_ALLOW_HTTP_URLS) or "\x00" in value:
        raise CarbonParkError(errors.E7419, field=field, value=value[:100])
    return value


def _snapshot(p: Platform) -> dict:
    return {f: getattr(p, f) for f in PLATFORM_FIELDS} | {"state": p.state, "app_id": p.app_id}


def _validated(platform: Platform, fields: dict) -> Platform:
    for key, value in fields.items():
        if key not in PLATFORM_FIELDS:
            raise TypeError(f"unknown platform field {key}")
        setattr(platform, key, value)
    uscc = normalize_uscc(platform.uscc or "")
    if not uscc_is_valid(uscc):
        raise CarbonParkError(errors.E7415, field="uscc", value=(platform.uscc or "")[:40])
    platform.uscc = uscc
    platform.ip_whitelist = clean_whitelist(platform.ip_whitelist or [])
    for name in ("base_url", "backup_url", "callback_url"):
        setattr(platform, name, _check_url(getattr(platform, name), name))
    try:
        platform.full_clean(exclude=["secret_sealed", "app_id"])
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise CarbonParkError(errors.E7409, field=field, name=field, detail="; ".join(messages)) from None
    return platform


@transaction.atomic
def register_platform(*, actor, park, **fields) -> tuple[Platform, str]:
    """Register a third-party platform in ``park`` (R-7.4.2.1): name, unified social credit code (GB 32100-2015),
    base and backup URLs, IP whitelist, alert e-mail, callback URL, certification. Returns the platform and its
    secret, shown this once: only its sealed form is kept (R-7.4.4.1). Needs MANAGE in the park; audited."""
    access.require(actor, Action.MANAGE, park)
    platform = _validated(Platform(park=park), fields)
    platform.app_id = "cp" + secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    platform.secret_sealed = seal_secret(secret.encode(), _context(platform.app_id))
    platform.save()
    record_change(actor=actor, action="platform.register", obj=platform, after=_snapshot(platform),
                  park_code=park.code)
    return platform, secret


@transaction.atomic
def update_platform(*, actor, platform: Platform, reason: str = "", **fields) -> Platform:
    """Change a platform's registration (R-7.4.2.1); its app_id and secret stay. Audited."""
    access.require(actor, Action.MANAGE, platform.park_id)
    before = _snapshot(Platform.objects.get(pk=platform.pk))
    _validated(platform, fields)
    platform.save()
    record_change(actor=actor, action="platform.update", obj=platform, before=before, after=_snapshot(platform),
                  reason=reason, park_code=platform.park.code)
    return platform


@transaction.atomic
def reissue_secret(*, actor, platform: Platform) -> str:
    """A new secret for the platform (the old one stops working at once); shown this once. Audited."""
    access.require(actor, Action.MANAGE, platform.park_id)
    secret = secrets.token_urlsafe(32)
    Platform.objects.filter(pk=platform.pk).update(secret_sealed=seal_secret(secret.encode(),
                                                                             _context(platform.app_id)))
    record_change(actor=actor, action="platform.secret", obj=platform, park_code=platform.park.code)
    return secret


def suspend_platform(platform: Platform, *, reason: str, code: str) -> bool:
    """Suspend an app_id (R-7.4.3.2): three consecutive authentication failures or ten failed pushes within an
    hour. E-mails the alert address and raises an alarm in the park; audited. False when it was suspended
    already (nothing sent twice)."""
    from apps.quality.services import AlarmRaise, raise_alarms

    now = timezone.now()
    with transaction.atomic():
        changed = Platform.objects.filter(pk=platform.pk, state=Platform.State.ACTIVE).update(
            state=Platform.State.SUSPENDED, state_reason=reason[:300], state_since=now)
        if not changed:
            return False
        platform.state, platform.state_reason, platform.state_since = Platform.State.SUSPENDED, reason[:300], now
        record_change(actor="integrations", action="platform.suspend", obj=platform, reason=reason,
                      after={"state": "suspended", "code": code}, park_code=platform.park.code)
        raise_alarms([AlarmRaise(platform.park_id, None, "integration", code,
                                 f"第三方平台 {platform.name}（{platform.app_id}）已暂停：{reason}",
                                 f"Third-party platform {platform.name} ({platform.app_id}) suspended: {reason}")])
        transaction.on_commit(lambda: _mail_suspension(platform, reason))
    return True


def _mail_suspension(platform: Platform, reason: str) -> None:
    subject = f"[CarbonPark] app_id {platform.app_id} 已暂停 / suspended"
    body = (f"第三方平台 {platform.name}（app_id {platform.app_id}）已被暂停：{reason}\n"
            f"请排查后联系园区管理员恢复。\n\n"
            f"Third-party platform {platform.name} (app_id {platform.app_id}) has been suspended: {reason}\n"
            f"Fix the cause, then ask the park administrator to resume it.\n")
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [platform.alert_email])
    except Exception:  # noqa: BLE001 - the suspension stands; the alarm in the portal says it too
        log.warning("suspension e-mail to %s failed", platform.alert_email, exc_info=True)


@transaction.atomic
def resume_platform(*, actor, platform: Platform, reason: str = "") -> Platform:
    """A park administrator resumes a suspended app_id (R-7.4.3.2); its failure counts start over. Audited."""
    from apps.integrations import limits as open_limits

    access.require(actor, Action.MANAGE, platform.park_id)
    before = {"state": platform.state, "reason": platform.state_reason}
    now = timezone.now()
    Platform.objects.filter(pk=platform.pk).update(state=Platform.State.ACTIVE, state_reason="",
                                                   state_since=now, auth_failures=0, recovered_at=now)
    platform.refresh_from_db()
    open_limits.forget_push_failures(platform.app_id)
    record_change(actor=actor, action="platform.resume", obj=platform, before=before, after={"state": "active"},
                  reason=reason, park_code=platform.park.code)
    return platform


def note_auth_failure(platform: Platform, code: str) -> None:
    """One more consecutive authentication failure; the third suspends (R-7.4.3.2)."""
    Platform.objects.filter(pk=platform.pk).update(auth_failures=F("auth_failures") + 1)
    count = Platform.objects.filter(pk=platform.pk).values_list("auth_failures", flat=True).first() or 0
    if count >= settings.OPEN_AUTH_FAILURES_SUSPEND:
        suspend_platform(platform, reason=f"{count} consecutive authentication failures (last {code})", code=code)


def note_auth_success(platform: Platform) -> None:
    if platform.auth_failures:
        Platform.objects.filter(pk=platform.pk).update(auth_failures=0)


def note_push_failure(platform: Platform, code: str) -> None:
    """One more failed push; ten within an hour suspend (R-7.4.3.2)."""
    from apps.integrations import limits as open_limits

    count = open_limits.count_push_failure(platform.app_id)
    if count >= settings.OPEN_PUSH_FAILURES_SUSPEND:
        suspend_platform(platform, reason=f"{count} failed pushes within one hour (last {code})", code=code)
