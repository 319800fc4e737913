"""Resumable uploads (tus 1.0.0, interfaces.md §3 and §7, R-8.4.2.2, R-8.4.2.3): one row per upload, its bytes in
one file under MEDIA_ROOT/uploads/ named by the upload's id (never by the sender's file name).

The row is the truth about the bytes: ``offset`` counts the bytes written and committed, and the file is cut back
to it before anything is appended (bytes past it were written by a PATCH that never committed). One PATCH at a
time holds the upload (``lease``), taken and released under the row's lock (select_for_update)."""

import uuid
from pathlib import Path

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _


class Upload(models.Model):
    class State(models.TextChoices):
        RECEIVING = "receiving", _("receiving")
        RECEIVED = "received", _("received, queued for loading")
        LOADING = "loading", _("loading")
        LOADED = "loaded", _("loaded")
        FAILED = "failed", _("failed")
        EXPIRED = "expired", _("expired")

    class Concat(models.TextChoices):
        NONE = "", _("whole file")
        PARTIAL = "partial", _("part of a concatenation")
        FINAL = "final", _("concatenation of parts")

    class Kind(models.TextChoices):
        CSV = "csv", "CSV"
        XML = "xml", "XML"
        XLSX = "xlsx", "XLSX"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    park = models.ForeignKey("accounts.Park", verbose_name=_("park"), on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("uploaded by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_by_token = models.ForeignKey("accounts.ApiToken", verbose_name=_("uploaded with the token"), null=True,
                                         blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by_label = models.CharField(_("uploaded by (name)"), max_length=150)
    filename = models.CharField(_("file name"), max_length=255, blank=True)
    kind = models.CharField(_("format"), max_length=4, choices=Kind.choices, blank=True)
    compression = models.CharField(_("compression"), max_length=3, blank=True)  # "", "gz" or "zip"
    encrypted = models.BooleanField(_("encrypted (.enc)"), default=False)
    length = models.BigIntegerField(_("declared length"), null=True, blank=True)  # null: Upload-Defer-Length
    offset = models.BigIntegerField(_("bytes received"), default=0)
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    md5 = models.CharField(_("declared MD5"), max_length=32, blank=True)
    received_md5 = models.CharField(_("MD5 of the bytes received"), max_length=32, blank=True)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.RECEIVING)
    concat = models.CharField(_("concatenation"), max_length=7, choices=Concat.choices, blank=True, default="")
    parts = ArrayField(models.UUIDField(), verbose_name=_("parts"), default=list, blank=True)
    final = models.ForeignKey("self", verbose_name=_("concatenated into"), null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="+")
    expires_at = models.DateTimeField(_("expires"))
    lease = models.UUIDField(null=True, blank=True, editable=False)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    load_queued_at = models.DateTimeField(_("queued for loading"), null=True, blank=True)
    rows = models.BigIntegerField(_("rows read"), default=0)
    accepted = models.BigIntegerField(_("accepted"), default=0)
    duplicates = models.BigIntegerField(_("duplicates"), default=0)
    rejected = models.BigIntegerField(_("rejected"), default=0)
    error_code = models.CharField(_("error code"), max_length=8, blank=True)
    error_params = models.JSONField(_("error details"), default=dict, blank=True)  # the message's {placeholders}
    report_csv = models.CharField(_("rejection report (CSV)"), max_length=255, blank=True)
    report_xlsx = models.CharField(_("rejection report (XLSX)"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    received_at = models.DateTimeField(_("received"), null=True, blank=True)
    loaded_at = models.DateTimeField(_("loading ended"), null=True, blank=True)
    bytes_removed_at = models.DateTimeField(_("file removed (retention)"), null=True, blank=True)

    class Meta:
        verbose_name = _("upload")
        verbose_name_plural = _("uploads")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "expires_at"], name="upload_state_expires"),
                   models.Index(fields=["park", "-created_at"], name="upload_park_created")]
        constraints = [
            models.CheckConstraint(condition=models.Q(offset__gte=0), name="upload_offset_not_negative"),
            models.CheckConstraint(condition=models.Q(length__isnull=True) | models.Q(offset__lte=models.F("length")),
                                   name="upload_offset_within_length"),
        ]

    def __str__(self):
        return f"{self.filename or self.concat or 'upload'} ({self.id})"

    @property
    def path(self) -> Path:
        return upload_dir() / str(self.id)

    @property
    def complete(self) -> bool:
        return self.length is not None and self.offset == self.length


def upload_dir() -> Path:
    """MEDIA_ROOT/uploads (read each time: tests and deployments point MEDIA_ROOT elsewhere)."""
    return Path(settings.MEDIA_ROOT) / "uploads"
