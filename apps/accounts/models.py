"""Parks, who belongs to them in which role, and the API tokens of devices and integrators."""

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from apps.accounts.access import Action, permission_codename
from apps.core.history import history_user
from apps.core.validators import validate_uscc


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not an IANA time zone such as Asia/Shanghai."),
                              params={"value": value})


class Park(models.Model):
    code = models.CharField(_("park code"), max_length=32, unique=True,
                            validators=[RegexValidator(r"^[A-Za-z0-9_-]{2,32}$")],
                            help_text=_("Used in MQTT topics and file names, e.g. JSTZ01."))
    name_zh = models.CharField(_("name (Chinese)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, default="Asia/Shanghai",
                                 validators=[validate_time_zone])
    uscc = models.CharField(_("unified social credit code"), max_length=18, blank=True,
                            validators=[validate_uscc])
    address = models.CharField(_("address"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    history = HistoricalRecords(get_user=history_user)

    class Meta:
        verbose_name = _("park")
        verbose_name_plural = _("parks")
        ordering = ["code"]
        # One per action of the seam, held per park through django-guardian; mirrors of the memberships
        # written by apps.accounts.services (never granted by hand: `manage.py sync_park_permissions` repairs).
        # (Names in English, not translated labels: evaluated at import, they would follow the active language.)
        permissions = [(permission_codename(a), f"park: {a.value}") for a in Action]

    def __str__(self):
        return f"{self.code} {self.name_zh}"


class Membership(models.Model):
    class Role(models.TextChoices):
        VIEWER = "viewer", _("viewer")
        OPERATOR = "operator", _("data entry")
        APPROVER = "approver", _("approver")
        AUDITOR = "auditor", _("auditor")
        ADMIN = "admin", _("park administrator")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE,
                             related_name="memberships")
    park = models.ForeignKey(Park, verbose_name=_("park"), on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.VIEWER)
    history = HistoricalRecords(get_user=history_user)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [models.UniqueConstraint(fields=["user", "park"], name="uniq_membership")]

    def __str__(self):
        return f"{self.user} @ {self.park.code} ({self.get_role_display()})"


class ApiToken(models.Model):
    """A key for a device, gateway or integrator, scoped to one park (interfaces.md §3).

    Only a SHA-256 digest of the secret is stored; the key is shown once when issued."""

    class Role(models.TextChoices):
        DEVICE = "device", _("device (push readings)")
        INTEGRATOR = "integrator", _("integrator (push, read, manage sources)")

    name = models.CharField(_("name"), max_length=100)
    park = models.ForeignKey(Park, verbose_name=_("park"), on_delete=models.CASCADE, related_name="tokens")
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.INTEGRATOR)
    prefix = models.CharField(_("key prefix"), max_length=12, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True,
                                   blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    history = HistoricalRecords(excluded_fields=["last_used_at"], get_user=history_user)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        constraints = [models.UniqueConstraint(fields=["park", "name"], name="uniq_token_name")]

    def __str__(self):
        return f"{self.name} ({self.park.code}, {self.prefix}…)"

    @property
    def audit_label(self) -> str:
        return f"token:{self.park.code}/{self.name}"
