"""The rule library (R-9.2.3) and alarms (R-5.2.3.5, R-5.3.3)."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from apps.core.history import history_user


class Severity(models.TextChoices):
    REJECT = "reject", _("reject")
    FLAG = "flag", _("store and flag")
    WARN = "warn", _("store and warn")


class Rule(models.Model):
    """A check loaded at run time, scoped to everything, a park, a source and/or a data item.

    Empty scope fields match all. A change takes effect with the next batch, no restart."""

    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=32)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    severity = models.CharField(_("severity"), max_length=8, choices=Severity.choices, default=Severity.REJECT)
    park = models.ForeignKey("accounts.Park", verbose_name=_("park"), null=True, blank=True,
                             on_delete=models.CASCADE)
    source = models.ForeignKey("sources.DataSource", verbose_name=_("data source"), null=True, blank=True,
                               on_delete=models.CASCADE)
    data_item = models.ForeignKey("catalog.DataItem", verbose_name=_("data item"), null=True, blank=True,
                                  on_delete=models.CASCADE)
    enabled = models.BooleanField(_("enabled"), default=True)
    message_zh = models.CharField(_("message (Chinese)"), max_length=300, blank=True)
    message_en = models.CharField(_("message (English)"), max_length=300, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    history = HistoricalRecords(get_user=history_user)

    class Meta:
        verbose_name = _("validation rule")
        verbose_name_plural = _("validation rules")
        ordering = ["kind", "id"]

    def __str__(self):
        return self.name


class Alarm(models.Model):
    """An open problem a person should see. Repeats of the same problem raise the count, not new rows."""

    class State(models.TextChoices):
        OPEN = "open", _("open")
        ACKNOWLEDGED = "acknowledged", _("acknowledged")
        CLOSED = "closed", _("closed")

    class Kind(models.TextChoices):
        VALIDATION = "validation", _("validation failure")
        OFFLINE = "offline", _("source offline")
        SILENT = "silent", _("source silent")
        DEVICE = "device", _("device or gateway fault")
        INTEGRATION = "integration", _("third-party platform")

    park = models.ForeignKey("accounts.Park", verbose_name=_("park"), null=True, blank=True,
                             on_delete=models.CASCADE)
    source = models.ForeignKey("sources.DataSource", verbose_name=_("data source"), null=True, blank=True,
                               on_delete=models.CASCADE)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    code = models.CharField(_("error code"), max_length=8, blank=True)
    severity = models.CharField(_("severity"), max_length=8, choices=Severity.choices, default=Severity.REJECT)
    message_zh = models.TextField(_("message (Chinese)"))
    message_en = models.TextField(_("message (English)"), blank=True)
    count = models.PositiveIntegerField(_("occurrences"), default=1)
    first_at = models.DateTimeField(_("first seen"), auto_now_add=True)
    last_at = models.DateTimeField(_("last seen"), db_index=True)
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.OPEN)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("acknowledged by"), null=True,
                                        blank=True, on_delete=models.SET_NULL, related_name="+")
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)

    class Meta:
        verbose_name = _("alarm")
        verbose_name_plural = _("alarms")
        ordering = ["-last_at"]
        constraints = [
            models.UniqueConstraint(fields=["park", "source", "kind", "code"], condition=models.Q(state="open"),
                                    nulls_distinct=False, name="uniq_open_alarm"),
        ]

    def __str__(self):
        return f"[{self.code}] {self.message_zh[:60]}"


class Gap(models.Model):
    """A hole in a numeric series: no reading between two stored ones for longer than the source's expected
    interval allows (R-9.1.2: gaps explicitly marked; R-9.3.2.1: the list filling works from).

    Found by apps/quality/gaps.py alone, set-based; ``start`` and ``end`` are the readings either side."""

    class State(models.TextChoices):
        OPEN = "open", _("open")
        FILLED = "filled", _("filled")
        IGNORED = "ignored", _("ignored")

    park = models.ForeignKey("accounts.Park", verbose_name=_("park"), on_delete=models.CASCADE, related_name="+")
    source = models.ForeignKey("sources.DataSource", verbose_name=_("data source"), on_delete=models.CASCADE,
                               related_name="+")
    data_item = models.ForeignKey("catalog.DataItem", verbose_name=_("data item"), on_delete=models.CASCADE,
                                  related_name="+")
    start = models.DateTimeField(_("last reading before"))
    end = models.DateTimeField(_("first reading after"))
    interval_s = models.PositiveIntegerField(_("expected interval (s)"))
    missing = models.PositiveIntegerField(_("missing points"))
    state = models.CharField(_("state"), max_length=8, choices=State.choices, default=State.OPEN)
    found_at = models.DateTimeField(_("found"))
    updated = models.DateTimeField(_("updated"))

    class Meta:
        verbose_name = _("gap")
        verbose_name_plural = _("gaps")
        ordering = ["-start"]
        constraints = [models.UniqueConstraint(fields=["source", "data_item", "start"], name="uniq_gap_start")]
        indexes = [models.Index(fields=["park", "state", "-start"], name="gap_park_state_start")]

    def __str__(self):
        return f"{self.source_id}/{self.data_item_id} {self.start:%Y-%m-%d %H:%M} → {self.end:%Y-%m-%d %H:%M}"


class WorkdayOverride(models.Model):
    """A day declared a working day or a day off by the platform, over the official calendar (R-6.2.d): for a
    year the ``chinese-calendar`` library does not cover yet, or a local exception. It wins over the library."""

    date = models.DateField(_("date"), unique=True)
    is_workday = models.BooleanField(_("working day"))
    note = models.CharField(_("note"), max_length=200, blank=True,
                            help_text=_("e.g. the State Council notice that declares it"))
    history = HistoricalRecords(get_user=history_user)

    class Meta:
        verbose_name = _("working-day override")
        verbose_name_plural = _("working-day overrides")
        ordering = ["-date"]

    def __str__(self):
        return f"{self.date:%Y-%m-%d} {'工作日' if self.is_workday else '休息日'}"


class DeadlineReminder(models.Model):
    """The reminder log (R-6.2.b–d): one row per overdue item, period and step (the reminder to the responsible
    staff, then the escalation to the park's administrators). The unique constraint makes a second run of the
    reminder task send nothing twice."""

    class Step(models.TextChoices):
        REMIND = "remind", _("reminder")
        ESCALATE = "escalate", _("escalation")

    class ItemKind(models.TextChoices):
        SOURCE = "source", _("data source")
        FORM = "form", _("form")

    park = models.ForeignKey("accounts.Park", verbose_name=_("park"), on_delete=models.CASCADE, related_name="+")
    item_kind = models.CharField(_("item kind"), max_length=8, choices=ItemKind.choices)
    item_id = models.PositiveIntegerField(_("item id"))
    item_label = models.CharField(_("item"), max_length=200)
    period_start = models.DateField(_("period start"))
    period_end = models.DateField(_("period end"))
    deadline_kind = models.CharField(_("deadline kind"), max_length=8)
    due_at = models.DateTimeField(_("due"))
    step = models.CharField(_("step"), max_length=8, choices=Step.choices)
    sent_at = models.DateTimeField(_("sent"))
    recipients = models.JSONField(_("recipients"), default=list, blank=True)

    class Meta:
        verbose_name = _("deadline reminder")
        verbose_name_plural = _("deadline reminders")
        ordering = ["-sent_at"]
        constraints = [models.UniqueConstraint(fields=["item_kind", "item_id", "period_start", "step"],
                                               name="quality_deadlinereminder_once")]

    def __str__(self):
        return f"{self.item_label} {self.period_start:%Y-%m-%d} {self.step}"


class PostHit(models.Model):
    """One reading a check after storage found suspect (R-9.2.2), logged with time, result and reason (R-9.2.3).

    Beside the reading, never on it: stored readings change only through revisions, so the "suspect" of a
    post check lives here and the readings browser shows it. Written by apps/quality/postchecks.py alone,
    set-based; unique per rule and reading, so a re-run over the same readings adds nothing."""

    park = models.ForeignKey("accounts.Park", verbose_name=_("park"), on_delete=models.CASCADE, related_name="+")
    source = models.ForeignKey("sources.DataSource", verbose_name=_("data source"), on_delete=models.CASCADE,
                               related_name="+")
    data_item = models.ForeignKey("catalog.DataItem", verbose_name=_("data item"), on_delete=models.CASCADE,
                                  related_name="+")
    ts = models.DateTimeField(_("collection time"))
    rule = models.ForeignKey(Rule, verbose_name=_("rule"), on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(_("kind"), max_length=32)
    severity = models.CharField(_("severity"), max_length=8, choices=Severity.choices)
    value = models.FloatField(_("value"), null=True, blank=True)
    reason = models.JSONField(_("reason"), default=dict, blank=True)
    checked_at = models.DateTimeField(_("checked"))

    class Meta:
        verbose_name = _("post-check hit")
        verbose_name_plural = _("post-check hits")
        ordering = ["-ts"]
        constraints = [models.UniqueConstraint(fields=["rule", "source", "data_item", "ts"],
                                               name="uniq_posthit_reading")]
        indexes = [models.Index(fields=["source", "data_item", "ts"], name="posthit_reading"),
                   models.Index(fields=["park", "-ts"], name="posthit_park_ts")]

    def __str__(self):
        return f"{self.kind} {self.source_id}/{self.data_item_id} {self.ts:%Y-%m-%d %H:%M:%S}"
