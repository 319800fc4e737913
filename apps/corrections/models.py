"""Corrections of stored readings (R-9.3.2.2, R-9.3.2.3): a request, its evidence, the decision, and the
revisions written beside the readings when it is applied. A reading as received is never changed: its
effective value is its latest revision (apps/corrections/selectors.py), else the value stored at ingest."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.models import EvidenceFile


class Correction(models.Model):
    """One request to correct a range of one source's readings of one data item (start = end: one reading)."""

    class Kind(models.TextChoices):
        NEW_VALUE = "new_value", _("new value")
        FACTOR = "factor", _("multiply by a factor")
        # Made by the platform, never requested (apps/quality/filling.py): per-reading values.
        REPAIR = "repair", _("repair by interpolation")
        LATE_READING = "late_reading", _("real reading after a fill")
        # Re-pushed by a third-party platform within 5 min (apps/integrations/resubmit.py, R-7.4.3.1).
        RESUBMISSION = "resubmission", _("corrected by the sending platform")

    class State(models.TextChoices):
        REQUESTED = "requested", _("requested")
        APPROVED = "approved", _("approved")
        REJECTED = "rejected", _("rejected")
        APPLIED = "applied", _("applied")

    park = models.ForeignKey("accounts.Park", verbose_name=_("park"), on_delete=models.PROTECT, related_name="+")
    source = models.ForeignKey("sources.DataSource", verbose_name=_("data source"), on_delete=models.PROTECT,
                               related_name="+")
    data_item = models.ForeignKey("catalog.DataItem", verbose_name=_("data item"), on_delete=models.PROTECT,
                                  related_name="+")
    start = models.DateTimeField(_("from (inclusive)"))
    end = models.DateTimeField(_("to (inclusive)"))
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    new_value = models.FloatField(_("new value"), null=True, blank=True)
    factor = models.FloatField(_("factor"), null=True, blank=True)
    reason = models.TextField(_("reason"))
    readings_in_range = models.PositiveIntegerField(_("readings in range at request"), default=0)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("requested by"), null=True,
                                     blank=True, on_delete=models.SET_NULL, related_name="+")
    requested_by_label = models.CharField(_("requested by (name)"), max_length=150)
    requested_at = models.DateTimeField(_("requested at"))
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.REQUESTED)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("decided by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    decided_by_label = models.CharField(_("decided by (name)"), max_length=150, blank=True)
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    comment = models.TextField(_("comment"), blank=True)
    applied_at = models.DateTimeField(_("applied at"), null=True, blank=True)
    revised_count = models.PositiveIntegerField(_("readings revised"), default=0)

    class Meta:
        verbose_name = _("correction")
        verbose_name_plural = _("corrections")
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["park", "state", "-requested_at"], name="correction_park_state")]
        constraints = [
            models.CheckConstraint(condition=models.Q(start__lte=models.F("end")), name="correction_range_order"),
            models.CheckConstraint(
                condition=(models.Q(kind="new_value", new_value__isnull=False, factor__isnull=True)
                           | models.Q(kind="factor", factor__isnull=False, new_value__isnull=True)
                           | models.Q(kind__in=["repair", "late_reading", "resubmission"], factor__isnull=True,
                                      new_value__isnull=True)),
                name="correction_kind_value"),
        ]

    def __str__(self):
        return f"#{self.pk} ({self.get_state_display()})"


class Evidence(EvidenceFile):
    """A document backing a request (PDF, PNG or JPEG, recognised by its first bytes), kept with its SHA-256."""

    correction = models.ForeignKey(Correction, verbose_name=_("correction"), null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="evidence")
    file = models.FileField(_("file"), upload_to="evidence/%Y/%m/")

    class Meta:
        verbose_name = _("evidence")
        verbose_name_plural = _("evidence")
        ordering = ["-uploaded_at", "-id"]


class Revision(models.Model):
    """A new value beside one stored reading, identified as the reading is: (source, data item, ts). Written
    only by ``revise_readings`` (the database refuses any other writer, and every UPDATE or DELETE)."""

    id = models.BigAutoField(primary_key=True)
    park = models.ForeignKey("accounts.Park", verbose_name=_("park"), on_delete=models.PROTECT, related_name="+",
                             db_index=False, db_constraint=False)
    source = models.ForeignKey("sources.DataSource", verbose_name=_("data source"), on_delete=models.PROTECT,
                               related_name="+", db_index=False, db_constraint=False)
    data_item = models.ForeignKey("catalog.DataItem", verbose_name=_("data item"), on_delete=models.PROTECT,
                                  related_name="+", db_index=False, db_constraint=False)
    ts = models.DateTimeField(_("collection time"))
    reading_id = models.BigIntegerField(_("reading"))
    value = models.FloatField(_("new value"))
    previous_value = models.FloatField(_("previous effective value"), null=True)
    correction = models.ForeignKey(Correction, verbose_name=_("correction"), on_delete=models.PROTECT,
                                   related_name="revisions", db_index=False)
    written_at = models.DateTimeField(_("written"))
    written_by = models.CharField(_("written by"), max_length=150)
    # The flags of the revised value (apps.ingestion.models.Flag): CORRECTED for an approved correction,
    # REPAIRED for a minor anomaly repaired by interpolation, the arriving reading's own for a real reading that
    # replaced a fill (R-9.3.1, R-9.3.2.1).
    flags = models.PositiveSmallIntegerField(_("flags"), default=32)

    class Meta:
        verbose_name = _("revision")
        verbose_name_plural = _("revisions")
        indexes = [
            # The effective-value probe: the latest revision of one reading, read from the index alone.
            models.Index(fields=["source", "data_item", "ts", "-id"], name="revision_reading_latest",
                         include=["value", "flags"]),
            models.Index(fields=["correction"], name="revision_correction"),
        ]

    def __str__(self):
        return f"{self.source_id}/{self.data_item_id}@{self.ts:%Y-%m-%d %H:%M:%S} → {self.value}"
