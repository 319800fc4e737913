"""Third-party platforms (interfaces.md §6, R-7.4): registration, subscriptions (topics), callback deliveries."""

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.validators import validate_uscc


class Platform(models.Model):
    """A registered third-party platform of one park (R-7.4.2.1). Its secret is kept sealed (AES-256-GCM under
    the master key, apps/core/crypto.py), never in plain text: it is shown once, when issued."""

    class State(models.TextChoices):
        ACTIVE = "active", _("active")
        SUSPENDED = "suspended", _("suspended")

    park = models.ForeignKey("accounts.Park", verbose_name=_("park"), on_delete=models.PROTECT,
                             related_name="platforms")
    name = models.CharField(_("platform name"), max_length=200)
    uscc = models.CharField(_("unified social credit code"), max_length=18, validators=[validate_uscc])
    base_url = models.URLField(_("base URL"), max_length=500)
    backup_url = models.URLField(_("backup URL"), max_length=500, blank=True)
    ip_whitelist = ArrayField(models.CharField(max_length=64), verbose_name=_("IP whitelist"), default=list,
                              help_text=_("addresses or CIDR networks the platform calls from, e.g. 203.0.113.0/24"))
    alert_email = models.EmailField(_("alert e-mail"))
    alert_phone = models.CharField(_("alert phone (SMS)"), max_length=32, blank=True)
    callback_url = models.URLField(_("callback URL"), max_length=500, blank=True)
    certified = models.BooleanField(
        _("officially certified"), default=False,
        help_text=_("Only certified platforms may feed items that need proof of source (R-6.3–6.5)."))
    rate_limit = models.PositiveIntegerField(
        _("rate limit (requests/min)"), null=True, blank=True,
        help_text=_("empty: the platform default (OPEN_RATE_LIMIT_PER_MIN, 100)"))
    app_id = models.CharField(_("app ID"), max_length=40, unique=True, editable=False)
    secret_sealed = models.BinaryField(editable=False)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.ACTIVE)
    state_reason = models.CharField(_("state reason"), max_length=300, blank=True)
    state_since = models.DateTimeField(_("since"), null=True, blank=True)
    auth_failures = models.PositiveIntegerField(_("consecutive authentication failures"), default=0)
    # health (R-7.4.4.2): which endpoint calls go to, and what the last probe saw
    use_backup = models.BooleanField(_("on backup URL"), default=False)
    last_probe_at = models.DateTimeField(_("last probe"), null=True, blank=True)
    last_probe_ms = models.PositiveIntegerField(_("last response (ms)"), null=True, blank=True)
    last_probe_ok = models.BooleanField(_("primary healthy"), null=True, blank=True)
    backup_probe_at = models.DateTimeField(_("last backup probe"), null=True, blank=True)
    backup_probe_ms = models.PositiveIntegerField(_("backup response (ms)"), null=True, blank=True)
    backup_probe_ok = models.BooleanField(_("backup healthy"), null=True, blank=True)
    # The end of the last outage (the probe found the primary healthy again) or suspension (resumed): backfills
    # are accepted for BACKFILL_WINDOW_S after it (R-7.4.3.3).
    recovered_at = models.DateTimeField(_("recovered"), null=True, blank=True)
    created_at = models.DateTimeField(_("registered"), auto_now_add=True)

    class Meta:
        verbose_name = _("third-party platform")
        verbose_name_plural = _("third-party platforms")
        ordering = ["park", "name"]

    def __str__(self):
        return f"{self.name} ({self.app_id})"

    @property
    def audit_label(self) -> str:
        return f"platform:{self.app_id}"


class Subscription(models.Model):
    """A topic (R-7.4.2.3): the data codes a platform pushes, how often, and where results go back. Its data
    source (kind third-party topic, source ID = topic code) is what the readings are stored under."""

    platform = models.ForeignKey(Platform, verbose_name=_("platform"), on_delete=models.CASCADE,
                                 related_name="subscriptions")
    topic_code = models.CharField(_("topic code"), max_length=64, unique=True)
    source = models.OneToOneField("sources.DataSource", verbose_name=_("data source"), on_delete=models.PROTECT,
                                  related_name="subscription")
    data_codes = ArrayField(models.CharField(max_length=8), verbose_name=_("data codes"))
    frequency = models.CharField(_("push frequency"), max_length=16, blank=True)
    callback_url = models.URLField(_("callback URL"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["-created_at"]

    def __str__(self):
        return self.topic_code


class CallbackDelivery(models.Model):
    """One notice posted to a platform's callback URL (R-7.4.4.3): the delivery log, and the dead-letter list
    (state dead) that the portal replays."""

    class State(models.TextChoices):
        PENDING = "pending", _("pending")
        DELIVERED = "delivered", _("delivered")
        DEAD = "dead", _("dead letter")

    platform = models.ForeignKey(Platform, verbose_name=_("platform"), on_delete=models.CASCADE,
                                 related_name="deliveries")
    webhook_id = models.CharField(_("message ID"), max_length=64, unique=True)
    url = models.URLField(_("URL"), max_length=500)
    event = models.CharField(_("event"), max_length=40)
    payload = models.JSONField(_("payload"))
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_status = models.PositiveIntegerField(_("last HTTP status"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=300, blank=True)
    log = models.JSONField(_("attempt log"), default=list, blank=True)
    next_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    class Meta:
        verbose_name = _("callback delivery")
        verbose_name_plural = _("callback deliveries")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "next_at"])]

    def __str__(self):
        return self.webhook_id
