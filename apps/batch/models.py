"""The load log of batch files (R-7.2.1, R-8.4.1): one row per file loaded, whoever sent it (an upload, the
shared folder), with its MD5, counts, outcome and duration. Written by apps/batch/loading.py only."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class FileLoad(models.Model):
    class State(models.TextChoices):
        RUNNING = "running", _("loading")
        DONE = "done", _("loaded")
        FAILED = "failed", _("refused")

    class Origin(models.TextChoices):
        UPLOAD = "upload", _("upload")
        FOLDER = "folder", _("shared folder")
        COMMAND = "command", _("command line")

    park = models.ForeignKey("accounts.Park", verbose_name=_("park"), on_delete=models.PROTECT,
                             related_name="file_loads")
    filename = models.CharField(_("file name"), max_length=255)
    upload_id = models.CharField(_("upload ID"), max_length=64, blank=True)
    origin = models.CharField(_("origin"), max_length=8, choices=Origin.choices, default=Origin.UPLOAD)
    md5 = models.CharField(_("MD5"), max_length=32)
    size = models.BigIntegerField(_("size (bytes)"), default=0)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("loaded by"), null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(_("loaded by (label)"), max_length=150)
    state = models.CharField(_("state"), max_length=8, choices=State.choices, default=State.RUNNING)
    rows = models.IntegerField(_("rows"), default=0)
    accepted = models.IntegerField(_("accepted"), default=0)
    duplicates = models.IntegerField(_("duplicates"), default=0)
    rejected = models.IntegerField(_("rejected"), default=0)
    error_code = models.CharField(_("file error code"), max_length=8, blank=True)
    error_zh = models.TextField(_("file error (Chinese)"), blank=True)
    error_en = models.TextField(_("file error (English)"), blank=True)
    report_csv = models.CharField(_("rejection report (CSV)"), max_length=500, blank=True)
    report_xlsx = models.CharField(_("rejection report (XLSX)"), max_length=500, blank=True)
    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    duration_ms = models.IntegerField(_("duration (ms)"), default=0)

    class Meta:
        verbose_name = _("file load")
        verbose_name_plural = _("file loads")
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["park", "-started_at"]), models.Index(fields=["md5"]),
                   models.Index(fields=["state"], condition=models.Q(state="running"), name="batch_load_running")]

    def __str__(self):
        return f"{self.filename} ({self.get_state_display()})"
