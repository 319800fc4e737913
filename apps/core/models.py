"""The shared kernel's tables: the audit trail and the configuration version."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AuditEntry(models.Model):
    """Who changed what, when, from what to what, and why (R-7.3.2, R-9.3.2.3). Never updated.

    Written only by apps.core.services.record_change. Each record carries the SHA-256 of the previous
    record of its chain (one chain per park, ``park_code``; "" is the platform's chain), so an edit, a
    deletion or an insertion made in SQL is found by ``manage.py verify_audit`` (apps.core.chain). A
    database trigger refuses UPDATE and DELETE on the table (migration 0003)."""

    at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)
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
    seq = models.BigIntegerField(_("position in chain"), editable=False)
    prev_hash = models.CharField(_("previous record's hash"), max_length=64, editable=False)
    hash = models.CharField(_("hash"), max_length=64, editable=False)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit trail")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]
        constraints = [models.UniqueConstraint(fields=["park_code", "seq"], name="uniq_audit_chain_seq")]

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


class EvidenceFile(models.Model):
    """What every kept evidence document records (R-6.3–6.5): its park, the name it came with, its type and size
    as checked by its first bytes, its SHA-256, who uploaded it and when. Concrete models add what it backs and
    a ``file`` field with their own folder (corrections' Evidence, submissions' Attachment)."""

    park = models.ForeignKey("accounts.Park", verbose_name=_("park"), on_delete=models.PROTECT, related_name="+")
    original_name = models.CharField(_("original file name"), max_length=200)
    content_type = models.CharField(_("content type"), max_length=40)
    size = models.PositiveBigIntegerField(_("size (bytes)"))
    sha256 = models.CharField(_("SHA-256"), max_length=64, db_index=True)
    uploaded_by_label = models.CharField(_("uploaded by"), max_length=150)
    uploaded_at = models.DateTimeField(_("uploaded"))

    class Meta:
        abstract = True

    def __str__(self):
        return f"{self.original_name} ({self.sha256[:12]})"
