"""The shared kernel's tables: the audit trail and the configuration version."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditEntry(models.Model):
    """Who changed what, when, from what to what, and why (R-7.3.2, R-9.3.2.3). Never updated."""

    at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("user"), null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(_("actor"), max_length=150, blank=True,
                                   help_text=_("user name, API token or process that acted"))
    action = models.CharField(_("action"), max_length=64)
    object_type = models.CharField(_("object type"), max_length=64)
    object_id = models.CharField(_("object id"), max_length=64)
    object_repr = models.CharField(_("object"), max_length=200, blank=True)
    park_code = models.CharField(_("park"), max_length=32, blank=True, db_index=True)
    before = models.JSONField(_("before"), null=True, blank=True)
    after = models.JSONField(_("after"), null=True, blank=True)
    reason = models.TextField(_("reason"), blank=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit trail")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action} {self.object_repr}"


class ConfigVersion(models.Model):
    """A counter bumped by every service that changes what ingestion depends on (sources, catalog,
    rules, parks), so that each ingesting process reloads its compiled view without a restart."""

    name = models.CharField(max_length=32, primary_key=True)
    version = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("configuration version")
        verbose_name_plural = _("configuration versions")

    def __str__(self):
        return f"{self.name} v{self.version}"
