"""Readings and everything ingestion logs beside them. Only ingest_readings writes these tables."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Flag:
    """Platform-side quality flags: bits beside the value, never instead of it (interfaces.md §1)."""

    BACKFILL = 1
    INVALID = 2
    SUSPECT = 4
    REPAIRED = 8
    PATCHED = 16
    CORRECTED = 32

    NAMES = {"backfill": BACKFILL, "invalid": INVALID, "suspect": SUSPECT, "repaired": REPAIRED,
             "patched": PATCHED, "corrected": CORRECTED}
    LABELS = {"backfill": _("backfill"), "invalid": _("invalid"), "suspect": _("suspect (rule flag)"),
              "repaired": _("repaired"), "patched": _("patched"), "corrected": _("corrected")}

    @classmethod
    def names(cls, bits: int) -> list[str]:
        return [name for name, bit in cls.NAMES.items() if bits & bit]


class DeviceStatus(models.TextChoices):
    """The device's own quality flag, HJ 212-2017 vocabulary (interfaces.md §1)."""

    NORMAL = "N", _("N normal")
    STOPPED = "F", _("F stopped")
    MAINTENANCE = "M", _("M maintenance")
    MANUAL = "S", _("S manually set")
    FAULT = "D", _("D fault")
    CALIBRATION = "C", _("C calibration")
    OVER_LIMIT = "T", _("T over limit")
    COMMS_FAULT = "B", _("B communication fault")


class IngestBatch(models.Model):
    """One call of ingest_readings: the validation log's header (R-9.2.3: time, result, reason)."""

    received_at = models.DateTimeField(_("received"), db_index=True)
    channel = models.CharField(_("channel"), max_length=16)
    actor_label = models.CharField(_("actor"), max_length=150)
    park = models.ForeignKey("accounts.Park", verbose_name=_("park"), null=True, blank=True,
                             on_delete=models.SET_NULL)
    total = models.PositiveIntegerField(_("records"), default=0)
    accepted = models.PositiveIntegerField(_("accepted"), default=0)
    duplicates = models.PositiveIntegerField(_("duplicates"), default=0)
    rejected = models.PositiveIntegerField(_("rejected"), default=0)
    flagged = models.PositiveIntegerField(_("flagged"), default=0)
    warned = models.PositiveIntegerField(_("warned"), default=0)

    class Meta:
        verbose_name = _("ingest batch")
        verbose_name_plural = _("validation log")
        ordering = ["-received_at", "-id"]

    def __str__(self):
        return f"#{self.pk} {self.channel} {self.received_at:%Y-%m-%d %H:%M:%S}"


class Reading(models.Model):
    """One stored reading, identified by (source, data item, timestamp). The value is stored in the
    item's unit; when it arrived in another unit, the value and unit as received sit beside it."""

    # No database foreign keys (docs/readings-indexes.md): three deferred checks per row cost more than every
    # index together; the pipeline resolves each id from the configuration it validated against, the one-way-in
    # guard refuses every other writer, and PROTECT still holds for deletions through Django.
    park = models.ForeignKey("accounts.Park", verbose_name=_("park"), on_delete=models.PROTECT,
                             related_name="+", db_index=False, db_constraint=False)
    source = models.ForeignKey("sources.DataSource", verbose_name=_("data source"), on_delete=models.PROTECT,
                               related_name="+", db_index=False, db_constraint=False)
    data_item = models.ForeignKey("catalog.DataItem", verbose_name=_("data item"), on_delete=models.PROTECT,
                                  related_name="+", db_index=False, db_constraint=False)
    ts = models.DateTimeField(_("collection time"))
    value = models.FloatField(_("value"), null=True, blank=True)
    text_value = models.TextField(_("text value"), null=True, blank=True)
    received_value = models.FloatField(_("value as received"), null=True, blank=True)
    received_unit = models.CharField(_("unit as received"), max_length=32, blank=True, default="")
    status = models.CharField(_("device status"), max_length=1, default="N", choices=DeviceStatus.choices)
    flags = models.SmallIntegerField(_("flags"), default=0)
    channel = models.CharField(_("channel"), max_length=16)
    batch = models.ForeignKey(IngestBatch, verbose_name=_("batch"), on_delete=models.PROTECT, related_name="+",
                              db_index=False, db_constraint=False)
    received_at = models.DateTimeField(_("received"))

    class Meta:
        verbose_name = _("reading")
        verbose_name_plural = _("readings")
        constraints = [models.UniqueConstraint(fields=["source", "data_item", "ts"], name="uniq_reading_identity")]
        indexes = [
            # A park-scoped page (every page of park staff: apps/accounts/access.py) filtered by source, code or
            # flag counts its rows from this index alone: rows of one park lie one per heap page in time order.
            models.Index(fields=["park", "-ts"], name="reading_park_ts", include=["source", "data_item", "flags"]),
            models.Index(fields=["-ts"], name="reading_ts"),
            models.Index(fields=["data_item", "-ts"], name="reading_item_ts"),
            # Flagged readings are few; the flag filters (flags <> 0 AND flags & bit <> 0) use this.
            models.Index(fields=["-ts"], name="reading_flagged_ts", condition=~models.Q(flags=0)),
            # ... and a park's flag pages (park staff): without it they walked every park's flagged rows, one heap
            # page each, until 100 of theirs (1.9 s at 52 million readings); flags included: counted index-only.
            models.Index(fields=["park", "-ts"], name="reading_flagged_park_ts", include=["flags"],
                         condition=~models.Q(flags=0)),
        ]

    def __str__(self):
        return f"{self.source_id}/{self.data_item_id}@{self.ts:%Y-%m-%d %H:%M:%S}"


class Rejection(models.Model):
    """A record ingestion refused, kept with its raw content and error code (R-9.3.1: nothing
    silently dropped; the sender is told to resend)."""

    batch = models.ForeignKey(IngestBatch, verbose_name=_("batch"), on_delete=models.CASCADE,
                              related_name="rejections")
    index = models.PositiveIntegerField(_("index in batch"))
    park = models.ForeignKey("accounts.Park", verbose_name=_("park"), null=True, blank=True,
                             on_delete=models.SET_NULL, related_name="+")
    source_ref = models.CharField(_("source ID as sent"), max_length=100, blank=True)
    data_code = models.CharField(_("data code as sent"), max_length=40, blank=True)
    code = models.CharField(_("error code"), max_length=8)
    field = models.CharField(_("field"), max_length=40, blank=True)
    message_zh = models.TextField(_("message (Chinese)"))
    message_en = models.TextField(_("message (English)"))
    raw = models.TextField(_("record as received"))
    # The exact bytes, when the text above cannot be them (binary, NUL, invalid UTF-8, cut short).
    raw_bytes = models.BinaryField(_("bytes as received"), null=True, blank=True, editable=False)
    received_at = models.DateTimeField(_("received"), db_index=True)

    class Meta:
        verbose_name = _("rejected record")
        verbose_name_plural = _("rejected records")
        ordering = ["-received_at", "-id"]
        # The browser's code filter, newest first. The search (source_ref, raw) is icontains: no b-tree serves
        # it, so source_ref and the *_like pattern indexes went (docs/readings-indexes.md).
        indexes = [models.Index(fields=["code", "-received_at"], name="rejection_code_received")]

    def __str__(self):
        return f"{self.code} #{self.batch_id}[{self.index}]"


class ValidationEvent(models.Model):
    """A record that was stored with a flag or a warning, or not stored because it repeated one
    already kept (R-8.4.2.4, R-9.3.1: keep the first valid record and log the repeat)."""

    class Kind(models.TextChoices):
        DUPLICATE = "duplicate", _("duplicate")
        FLAGGED = "flagged", _("flagged")
        WARNED = "warned", _("warned")

    batch = models.ForeignKey(IngestBatch, verbose_name=_("batch"), on_delete=models.CASCADE,
                              related_name="events")
    index = models.PositiveIntegerField(_("index in batch"))
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    code = models.CharField(_("code"), max_length=8)
    source_ref = models.CharField(_("source ID"), max_length=100)
    data_code = models.CharField(_("data code"), max_length=40)
    ts = models.DateTimeField(_("collection time"))
    value_repr = models.TextField(_("value"), blank=True)
    message_zh = models.TextField(_("message (Chinese)"), blank=True)
    message_en = models.TextField(_("message (English)"), blank=True)
    rule = models.ForeignKey("quality.Rule", verbose_name=_("rule"), null=True, blank=True,
                             on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("validation event")
        verbose_name_plural = _("validation events")
        ordering = ["-batch_id", "index"]

    def __str__(self):
        return f"{self.kind} {self.code} {self.source_ref}/{self.data_code}"


class IdempotencyKey(models.Model):
    """A request remembered by its Idempotency-Key: the same key returns the same answer."""

    scope = models.CharField(max_length=80)
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    response = models.JSONField(null=True)
    batch = models.ForeignKey(IngestBatch, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="uniq_idempotency_key")]

    def __str__(self):
        return f"{self.scope} {self.key}"


class Rollup(models.Model):
    """Hourly, daily or monthly aggregate of one source and data item (docs/rollups.md). Buckets start at the
    park's local hour, day or calendar month. Counted: numeric, finite values not flagged invalid. Written only
    by apps/ingestion/rollups.py, from the readings themselves, never by hand."""

    class Interval(models.TextChoices):
        HOUR = "h", _("hourly")
        DAY = "d", _("daily")
        MONTH = "m", _("monthly")

    interval = models.CharField(_("interval"), max_length=1, choices=Interval.choices)
    park = models.ForeignKey("accounts.Park", verbose_name=_("park"), on_delete=models.PROTECT,
                             related_name="+", db_index=False, db_constraint=False)
    source = models.ForeignKey("sources.DataSource", verbose_name=_("data source"), on_delete=models.PROTECT,
                               related_name="+", db_index=False, db_constraint=False)
    data_item = models.ForeignKey("catalog.DataItem", verbose_name=_("data item"), on_delete=models.PROTECT,
                                  related_name="+", db_index=False, db_constraint=False)
    bucket = models.DateTimeField(_("bucket start"))
    count = models.IntegerField(_("count"))
    sum = models.FloatField(_("sum"))
    min = models.FloatField(_("minimum"))
    max = models.FloatField(_("maximum"))
    last = models.FloatField(_("last value"))
    last_ts = models.DateTimeField(_("time of the last value"))
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        verbose_name = _("rollup")
        verbose_name_plural = _("rollups")
        constraints = [models.UniqueConstraint(fields=["source", "data_item", "interval", "bucket"],
                                               name="uniq_rollup_bucket")]
        # A park-scoped page of one interval, newest first (the readings browser's rollup page, the API).
        indexes = [models.Index(fields=["park", "interval", "-bucket"], name="rollup_park_bucket")]

    def __str__(self):
        return f"{self.interval} {self.source_id}/{self.data_item_id}@{self.bucket:%Y-%m-%d %H:%M}"
