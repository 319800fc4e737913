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
    # Filling (R-9.3.2.1, apps/quality/filling.py): when the source was asked to resend the range, with which
    # command; how the gap was filled, when, how many points.
    refetch_at = models.DateTimeField(_("resend requested"), null=True, blank=True)
    refetch_command = models.ForeignKey("sources.Command", verbose_name=_("resend command"), null=True,
                                        blank=True, on_delete=models.SET_NULL, related_name="+")
    method = models.CharField(_("fill method"), max_length=16, blank=True, db_default="")
    filled_at = models.DateTimeField(_("filled"), null=True, blank=True)
    filled_points = models.PositiveIntegerField(_("points filled"), db_default=0)

    class Meta:
        verbose_name = _("gap")
        verbose_name_plural = _("gaps")
        ordering = ["-start"]
        constraints = [models.UniqueConstraint(fields=["source", "data_item", "start"], name="uniq_gap_start")]
        indexes = [models.Index(fields=["park", "state", "-start"], name="gap_park_state_start")]

    def __str__(self):
        return f"{self.source_id}/{self.data_item_id} {self.start:%Y-%m-%d %H:%M} → {self.end:%Y-%m-%d %H:%M}"


class Fill(models.Model):
    """One point stored by the filling of a gap (R-9.3.2.1): the reading (flagged "patched", stored through
    ingest_readings), the gap, the method and its basis. Beside the reading, so the ingest path stays as it is.
    ``superseded_at``: a real reading for the same time arrived later and its value became the effective one
    (a revision of the reading, apps/quality/filling.py)."""

    class Method(models.TextChoices):
        LINEAR = "linear", _("linear interpolation")
        PROFILE_DAY = "profile_day", _("profile of the previous day")
        PROFILE_WEEK = "profile_week", _("profile of the previous week")

    reading_id = models.BigIntegerField(_("reading"), unique=True)
    park = models.ForeignKey("accounts.Park", verbose_name=_("park"), on_delete=models.CASCADE, related_name="+")
    source = models.ForeignKey("sources.DataSource", verbose_name=_("data source"), on_delete=models.CASCADE,
                               related_name="+", db_index=False)
    data_item = models.ForeignKey("catalog.DataItem", verbose_name=_("data item"), on_delete=models.CASCADE,
                                  related_name="+", db_index=False)
    ts = models.DateTimeField(_("collection time"))
    gap = models.ForeignKey(Gap, verbose_name=_("gap"), null=True, on_delete=models.SET_NULL,
                            related_name="fills")
    method = models.CharField(_("fill method"), max_length=16, choices=Method.choices)
    value = models.FloatField(_("value filled"))
    basis = models.JSONField(_("basis"), default=dict)
    filled_at = models.DateTimeField(_("filled"))
    superseded_at = models.DateTimeField(_("replaced by a real reading"), null=True, blank=True)

    class Meta:
        verbose_name = _("filled point")
        verbose_name_plural = _("filled points")
        ordering = ["-ts"]
        indexes = [models.Index(fields=["source", "data_item", "ts"], name="fill_reading")]

    def __str__(self):
        return f"{self.method} {self.source_id}/{self.data_item_id} {self.ts:%Y-%m-%d %H:%M:%S}"


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


class BalanceGroup(models.Model):
    """Cross-source consistency (R-9.2.2): a main meter's hourly or daily value against the sum of its
    sub-meters' within a tolerance, checked after storage from the rollups (apps/quality/postchecks/balance.py).
    The main meter and every member belong to the group's park (apps/quality/services.py save_balance_group)."""

    class Interval(models.TextChoices):
        HOUR = "h", _("hourly")
        DAY = "d", _("daily")

    class Aggregate(models.TextChoices):
        SUM = "sum", _("sum of the readings (consumption per interval)")
        MEAN = "mean", _("mean of the readings (power, flow)")

    park = models.ForeignKey("accounts.Park", verbose_name=_("park"), on_delete=models.CASCADE, related_name="+")
    name = models.CharField(_("name"), max_length=200)
    main_source = models.ForeignKey("sources.DataSource", verbose_name=_("main meter"), on_delete=models.CASCADE,
                                    related_name="+")
    main_item = models.ForeignKey("catalog.DataItem", verbose_name=_("main meter's data item"),
                                  on_delete=models.CASCADE, related_name="+")
    interval = models.CharField(_("interval"), max_length=1, choices=Interval.choices, default=Interval.HOUR)
    aggregate = models.CharField(_("value per interval"), max_length=4, choices=Aggregate.choices,
                                 default=Aggregate.SUM)
    tolerance_pct = models.FloatField(_("tolerance (%)"), null=True, blank=True,
                                      help_text=_("of the main meter's value; the larger of the two tolerances "
                                                  "given applies"))
    tolerance_abs = models.FloatField(_("tolerance (absolute)"), null=True, blank=True,
                                      help_text=_("in the main meter's unit"))
    severity = models.CharField(_("severity"), max_length=8, choices=Severity.choices[1:], default=Severity.FLAG)
    enabled = models.BooleanField(_("enabled"), default=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    history = HistoricalRecords(get_user=history_user)

    class Meta:
        verbose_name = _("balance group")
        verbose_name_plural = _("balance groups")
        ordering = ["park", "name"]

    def __str__(self):
        return self.name


class BalanceMember(models.Model):
    """A sub-meter of a balance group: its source and data item, summed against the main meter."""

    group = models.ForeignKey(BalanceGroup, verbose_name=_("balance group"), on_delete=models.CASCADE,
                              related_name="members")
    source = models.ForeignKey("sources.DataSource", verbose_name=_("sub-meter"), on_delete=models.CASCADE,
                               related_name="+")
    data_item = models.ForeignKey("catalog.DataItem", verbose_name=_("data item"), on_delete=models.CASCADE,
                                  related_name="+")

    class Meta:
        verbose_name = _("sub-meter")
        verbose_name_plural = _("sub-meters")
        constraints = [models.UniqueConstraint(fields=["group", "source", "data_item"], name="uniq_balance_member")]

    def __str__(self):
        return f"{self.source} / {self.data_item}"


class PostHit(models.Model):
    """One reading a check after storage found suspect (R-9.2.2), logged with time, result and reason (R-9.2.3).

    Beside the reading, never on it: stored readings change only through revisions, so the "suspect" of a
    post check lives here and the readings browser shows it. Written by apps/quality/postchecks/ alone,
    set-based; unique per check (rule or balance group), series and time, so a re-run adds nothing.

    A check of a period (balance, ratio, duplicate) logs the period's start in ``ts`` and its end in ``until``:
    every reading of the series in [ts, until) is shown suspect. A ratio over a whole park has no source."""

    park = models.ForeignKey("accounts.Park", verbose_name=_("park"), on_delete=models.CASCADE, related_name="+")
    source = models.ForeignKey("sources.DataSource", verbose_name=_("data source"), on_delete=models.CASCADE,
                               related_name="+", null=True, blank=True)
    data_item = models.ForeignKey("catalog.DataItem", verbose_name=_("data item"), on_delete=models.CASCADE,
                                  related_name="+")
    ts = models.DateTimeField(_("collection time"))
    until = models.DateTimeField(_("period end"), null=True, blank=True)
    rule = models.ForeignKey(Rule, verbose_name=_("rule"), on_delete=models.CASCADE, related_name="+", null=True,
                             blank=True)
    group = models.ForeignKey(BalanceGroup, verbose_name=_("balance group"), on_delete=models.CASCADE,
                              related_name="+", null=True, blank=True)
    kind = models.CharField(_("kind"), max_length=32)
    severity = models.CharField(_("severity"), max_length=8, choices=Severity.choices)
    value = models.FloatField(_("value"), null=True, blank=True)
    reason = models.JSONField(_("reason"), default=dict, blank=True)
    checked_at = models.DateTimeField(_("checked"))

    class Meta:
        verbose_name = _("post-check hit")
        verbose_name_plural = _("post-check hits")
        ordering = ["-ts"]
        constraints = [models.UniqueConstraint(fields=["rule", "group", "source", "data_item", "ts"],
                                               nulls_distinct=False, name="uniq_posthit_check")]
        indexes = [models.Index(fields=["source", "data_item", "ts"], name="posthit_reading"),
                   models.Index(fields=["park", "-ts"], name="posthit_park_ts")]

    def __str__(self):
        return f"{self.kind} {self.source_id}/{self.data_item_id} {self.ts:%Y-%m-%d %H:%M:%S}"


class IndicatorMonth(models.Model):
    """The quality indicators of one series (source, data item) in one park-local calendar month (R-9.1,
    R-9.1.1–R-9.1.4): the counts they are ratios of, so that a park's or a source's figure is a sum of rows,
    never an average of averages. Written by apps/quality/indicators/compute.py alone, set-based, from the
    rollups, the readings' flags and receipt times, the gaps and the post-check hits; recomputed whole per month,
    so a refresh converges whatever came late. docs/quality-indicators.md."""

    park = models.ForeignKey("accounts.Park", verbose_name=_("park"), on_delete=models.CASCADE, related_name="+")
    source = models.ForeignKey("sources.DataSource", verbose_name=_("data source"), on_delete=models.CASCADE,
                               related_name="+")
    data_item = models.ForeignKey("catalog.DataItem", verbose_name=_("data item"), on_delete=models.CASCADE,
                                  related_name="+")
    month = models.DateField(_("month"), help_text=_("the first day of the park-local calendar month"))
    collection_method = models.CharField(_("collection method"), max_length=20)
    automatic = models.BooleanField(_("collected automatically"))
    interval_s = models.PositiveIntegerField(_("expected interval (s)"))
    # completeness
    period_s = models.BigIntegerField(_("seconds judged"))
    expected = models.IntegerField(_("points expected"))
    present = models.IntegerField(_("points present"))
    gap_s = models.BigIntegerField(_("seconds in gaps"))
    gaps = models.IntegerField(_("gaps"))
    patched = models.IntegerField(_("patched points"))
    # timeliness
    readings = models.IntegerField(_("readings stored"))
    timely = models.IntegerField(_("readings on time"))
    # consistency
    flagged = models.IntegerField(_("readings flagged suspect or invalid"))
    hit = models.IntegerField(_("readings with post-check hits"))
    inconsistent = models.IntegerField(_("readings flagged or hit"))
    # accuracy
    instrument_type = models.CharField(_("instrument type (GB 17167)"), max_length=20, blank=True)
    accuracy_class = models.CharField(_("accuracy class"), max_length=8, blank=True)
    required_class = models.CharField(_("required class"), max_length=8, blank=True)
    accuracy_ok = models.BooleanField(_("meets the required class"), null=True)
    computed_at = models.DateTimeField(_("computed"))

    class Meta:
        db_table = "quality_indicator_month"
        verbose_name = _("quality indicator")
        verbose_name_plural = _("quality indicators")
        ordering = ["-month", "source_id", "data_item_id"]
        constraints = [models.UniqueConstraint(fields=["source", "data_item", "month"],
                                               name="uniq_indicator_series_month")]
        indexes = [models.Index(fields=["park", "-month"], name="indicator_park_month")]

    def __str__(self):
        return f"{self.source_id}/{self.data_item_id} {self.month:%Y-%m}"
class RegisterSetting(models.Model):
    """A data item of a source whose readings are a cumulative register (an energy meter's kWh total), and how to
    turn it into consumption (issue #12 item 2; R-9.1.2, R-9.3.2.1): the rollover point, the CT and PT
    multipliers, the largest plausible advance, and the meter replacements (``MeterReplacement``).

    The readings stay as received; apps/quality/registers/derive.py derives the consumption beside them."""

    park = models.ForeignKey("accounts.Park", verbose_name=_("park"), on_delete=models.CASCADE, related_name="+")
    source = models.ForeignKey("sources.DataSource", verbose_name=_("data source"), on_delete=models.CASCADE,
                               related_name="register_settings")
    data_item = models.ForeignKey("catalog.DataItem", verbose_name=_("data item"), on_delete=models.CASCADE,
                                  related_name="+")
    modulus = models.FloatField(
        _("rollover point"), null=True, blank=True,
        help_text=_("The count at which the register returns to zero: 1000000 for a register whose largest "
                    "reading is 999999.99. Empty: the register never rolls over (every fall is a reset)."))
    ct_ratio = models.FloatField(_("CT ratio"), default=1.0,
                                 help_text=_("Current transformer multiplier, e.g. 40 for 200/5 A."))
    pt_ratio = models.FloatField(_("PT ratio"), default=1.0,
                                 help_text=_("Voltage transformer multiplier, e.g. 100 for 10 kV/100 V."))
    rated_power_kw = models.FloatField(
        _("rated power (kW)"), null=True, blank=True,
        help_text=_("The largest plausible load; the largest plausible advance of the register follows from it "
                    "(with 20 % headroom, divided by CT × PT)."))
    max_delta_per_hour = models.FloatField(
        _("largest advance per hour"), null=True, blank=True,
        help_text=_("In register units (before CT × PT); overrides the rated power when set."))
    note = models.CharField(_("note"), max_length=200, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("meter register")
        verbose_name_plural = _("meter registers")
        ordering = ["source__source_id", "data_item__code"]
        constraints = [models.UniqueConstraint(fields=["source", "data_item"], name="uniq_register_series")]

    def __str__(self):
        return f"{self.source.source_id} {self.data_item.code}"


class MeterReplacement(models.Model):
    """A meter swapped at ``ts``: readings before it are the old meter's, from it on the new one's. The interval
    across it books (old meter's last − reading before) + (reading after − new meter's first)."""

    setting = models.ForeignKey(RegisterSetting, verbose_name=_("meter register"), on_delete=models.CASCADE,
                                related_name="replacements")
    ts = models.DateTimeField(_("replaced at"))
    old_last = models.FloatField(_("old meter's last reading"))
    new_first = models.FloatField(_("new meter's first reading"))
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("meter replacement")
        verbose_name_plural = _("meter replacements")
        ordering = ["setting", "ts"]
        constraints = [models.UniqueConstraint(fields=["setting", "ts"], name="uniq_replacement_ts")]

    def __str__(self):
        return f"{self.setting} {self.ts:%Y-%m-%d %H:%M}"


class RegisterInterval(models.Model):
    """The consumption between two consecutive counted readings of a register (derived; never edited).

    Its keys have no database constraints (here and in ``Consumption``): the derivation, the one writer, inserts a
    million rows in a full run, and four foreign-key triggers per row cost more than the derivation itself; rows
    follow their setting, source and park through Django's cascade."""

    class Kind(models.TextChoices):
        OK = "ok", _("normal")
        ROLLOVER = "rollover", _("rollover")
        RESET = "reset", _("reset")
        REPLACEMENT = "replacement", _("meter replacement")
        IMPLAUSIBLE = "implausible", _("implausible advance")

    setting = models.ForeignKey(RegisterSetting, on_delete=models.CASCADE, related_name="+",
                                db_constraint=False, db_index=False)
    park = models.ForeignKey("accounts.Park", on_delete=models.CASCADE, related_name="+",
                                db_constraint=False, db_index=False)
    source = models.ForeignKey("sources.DataSource", on_delete=models.CASCADE, related_name="+",
                                db_constraint=False, db_index=False)
    data_item = models.ForeignKey("catalog.DataItem", on_delete=models.CASCADE, related_name="+",
                                db_constraint=False, db_index=False)
    start = models.DateTimeField(_("reading before"))
    end = models.DateTimeField(_("reading"))
    reading_start = models.FloatField()
    reading_end = models.FloatField()
    delta = models.FloatField(_("register advance"))
    consumption = models.FloatField(_("consumption"))
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    gap = models.BooleanField(_("gap"), default=False)

    class Meta:
        verbose_name = _("register interval")
        verbose_name_plural = _("register intervals")
        constraints = [models.UniqueConstraint(fields=["setting", "end"], name="uniq_register_interval")]
        indexes = [models.Index(fields=["source", "data_item", "end"], name="reginterval_series")]

    def __str__(self):
        return f"{self.setting_id} {self.start:%Y-%m-%d %H:%M} → {self.end:%Y-%m-%d %H:%M} {self.kind}"


class Consumption(models.Model):
    """Consumption per park-local hour, day or month derived from a register (each interval spread over the
    hours it spans in proportion to time)."""

    class Level(models.TextChoices):
        HOUR = "hour", _("hour")
        DAY = "day", _("day")
        MONTH = "month", _("month")

    setting = models.ForeignKey(RegisterSetting, on_delete=models.CASCADE, related_name="+",
                                db_constraint=False, db_index=False)
    park = models.ForeignKey("accounts.Park", on_delete=models.CASCADE, related_name="+",
                                db_constraint=False, db_index=False)
    source = models.ForeignKey("sources.DataSource", on_delete=models.CASCADE, related_name="+",
                                db_constraint=False, db_index=False)
    data_item = models.ForeignKey("catalog.DataItem", on_delete=models.CASCADE, related_name="+",
                                db_constraint=False, db_index=False)
    level = models.CharField(max_length=5, choices=Level.choices)
    bucket = models.DateTimeField(_("start"))
    value = models.FloatField(_("consumption"))
    intervals = models.PositiveIntegerField(_("intervals"))
    flagged = models.PositiveIntegerField(_("flagged intervals"))
    spread = models.BooleanField(_("spread from a gap"), default=False)

    class Meta:
        verbose_name = _("consumption")
        verbose_name_plural = _("consumption")
        constraints = [models.UniqueConstraint(fields=["setting", "level", "bucket"], name="uniq_consumption")]
        indexes = [models.Index(fields=["source", "data_item", "level", "bucket"], name="consumption_series")]

    def __str__(self):
        return f"{self.setting_id} {self.level} {self.bucket:%Y-%m-%d %H:%M}"
