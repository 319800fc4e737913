"""Form definitions and their published versions (R-7.3.1).

A ``Form`` holds a draft definition its park administrator edits; ``publish`` freezes it as a ``FormVersion``
with the catalog attributes of its items resolved into it, so a version renders and validates the same forever
(the database refuses to change or delete a published version: its immutability is its history)."""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from apps.core.history import history_user
from apps.core.models import EvidenceFile

FORM_CODE_RE = r"^[a-z0-9][a-z0-9_-]{1,62}$"


class Period(models.TextChoices):
    DAY = "day", _("day")
    MONTH = "month", _("month")
    QUARTER = "quarter", _("quarter")
    YEAR = "year", _("year")


class Form(models.Model):
    """A form a park (or, with no park, the platform: the default forms every park may use) offers for manual
    entry. ``definition`` is the draft (docs/form-definitions.md); clerks fill only published versions."""

    park = models.ForeignKey("accounts.Park", verbose_name=_("park"), null=True, blank=True,
                             on_delete=models.PROTECT, related_name="forms",
                             help_text=_("empty for the platform's default forms"))
    code = models.CharField(_("code"), max_length=63, unique=True, validators=[RegexValidator(FORM_CODE_RE)],
                            help_text=_("lower-case letters, digits, - and _; unique on the platform"))
    name_zh = models.CharField(_("name (Chinese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100, blank=True)
    definition = models.JSONField(_("draft definition"), default=dict, blank=True)
    is_active = models.BooleanField(_("active"), default=True, help_text=_("inactive forms are not offered for entry"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("updated by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("form")
        verbose_name_plural = _("forms")
        ordering = ["code"]

    def __str__(self):
        return f"{self.code} {self.name_zh}"


class FormVersion(models.Model):
    """A published definition, immutable (a trigger refuses UPDATE and DELETE). ``content_hash`` is the SHA-256
    of the canonical JSON of ``definition`` (sorted keys, no spaces, UTF-8): the same content, the same hash."""

    form = models.ForeignKey(Form, verbose_name=_("form"), on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    definition = models.JSONField(_("definition"))
    content_hash = models.CharField(_("content hash (SHA-256)"), max_length=64)
    published_at = models.DateTimeField(_("published"))
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("published by"), null=True,
                                     blank=True, on_delete=models.SET_NULL, related_name="+")
    published_by_label = models.CharField(_("published by (name)"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("form version")
        verbose_name_plural = _("form versions")
        ordering = ["form", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["form", "number"], name="entry_formversion_number"),
            models.CheckConstraint(condition=models.Q(number__gte=1), name="entry_formversion_number_positive"),
        ]
        indexes = [models.Index(fields=["form", "content_hash"], name="entry_formversion_hash")]

    def __str__(self):
        return f"{self.form.code} v{self.number}"


class Submission(models.Model):
    """One filled form of one park for one period (R-7.3.1.2, R-7.3.2): draft → submitted → approved | returned
    (a returned submission goes back to its clerk, who edits and submits it again). ``values`` are the cleaned
    values of the last save; every change is a version in ``history`` (who, when, what, why)."""

    class State(models.TextChoices):
        DRAFT = "draft", _("draft")
        SUBMITTED = "submitted", _("submitted")
        APPROVED = "approved", _("approved")
        RETURNED = "returned", _("returned")

    form = models.ForeignKey(Form, verbose_name=_("form"), on_delete=models.PROTECT, related_name="submissions")
    version = models.ForeignKey(FormVersion, verbose_name=_("form version"), on_delete=models.PROTECT,
                                related_name="submissions")
    park = models.ForeignKey("accounts.Park", verbose_name=_("park"), on_delete=models.PROTECT,
                             related_name="submissions")
    period_start = models.DateField(_("period start"), help_text=_("the first day of the day, month, quarter or "
                                                                   "year the submission covers"))
    values = models.JSONField(_("values"), default=dict, blank=True)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.DRAFT)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_by_label = models.CharField(_("created by (name)"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("created"))
    updated_at = models.DateTimeField(_("updated"))
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("submitted by"), null=True,
                                     blank=True, on_delete=models.SET_NULL, related_name="+")
    submitted_by_label = models.CharField(_("submitted by (name)"), max_length=150, blank=True)
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("reviewer"), null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="+")
    reviewer_label = models.CharField(_("reviewer (name)"), max_length=150, blank=True)
    reviewed_at = models.DateTimeField(_("reviewed"), null=True, blank=True)
    review_comment = models.TextField(_("review comment"), blank=True)
    history = HistoricalRecords(get_user=history_user, excluded_fields=["updated_at"])

    class Meta:
        verbose_name = _("submission")
        verbose_name_plural = _("submissions")
        ordering = ["-period_start", "form", "park"]
        constraints = [models.UniqueConstraint(fields=["form", "park", "period_start"],
                                               name="entry_submission_one_per_period")]
        indexes = [models.Index(fields=["park", "state", "-period_start"], name="entry_submission_park_state")]

    def __str__(self):
        return f"{self.form.code} {self.period_start:%Y-%m-%d} ({self.get_state_display()})"


class Attachment(EvidenceFile):
    """An evidence document of a submission (a test report, a filing, a certificate): for one attachment field
    (``field``, its path) or for the submission as a whole (``field`` empty). PDF, PNG or JPEG by its first bytes,
    size-limited, stored under MEDIA_ROOT named by its SHA-256 (R-6.4, R-6.5, R-7.3.1.2)."""

    submission = models.ForeignKey(Submission, verbose_name=_("submission"), on_delete=models.PROTECT,
                                   related_name="attachments")
    field = models.CharField(_("field"), max_length=200, blank=True,
                             help_text=_("the attachment field's path; empty for the submission as a whole"))
    file = models.FileField(_("file"), upload_to="entry/%Y/%m/")

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        ordering = ["submission", "id"]


class UsedNumber(models.Model):
    """A voucher, certificate or filing number taken by a submission (R-6.5). The unique constraint is the
    judge: of two concurrent submissions with the same number, the database lets one in."""

    scope = models.CharField(_("kind"), max_length=80, help_text=_("the data item's code, or field:<key>"))
    number = models.CharField(_("number"), max_length=2000)
    submission = models.ForeignKey(Submission, verbose_name=_("submission"), on_delete=models.PROTECT,
                                   related_name="used_numbers")
    park = models.ForeignKey("accounts.Park", verbose_name=_("park"), on_delete=models.PROTECT, related_name="+")
    field = models.CharField(_("field"), max_length=200)
    created_at = models.DateTimeField(_("taken"))

    class Meta:
        verbose_name = _("used number")
        verbose_name_plural = _("used numbers")
        constraints = [models.UniqueConstraint(fields=["scope", "number"], name="entry_usednumber_unique")]

    def __str__(self):
        return f"{self.scope} {self.number}"


class SubmissionReading(models.Model):
    """Which stored reading a submission's value became: the reading's identity (source, data item, time) and
    the field it came from (R-7.3.1.2). One reading belongs to one submission."""

    submission = models.ForeignKey(Submission, verbose_name=_("submission"), on_delete=models.PROTECT,
                                   related_name="readings")
    park = models.ForeignKey("accounts.Park", verbose_name=_("park"), on_delete=models.PROTECT, related_name="+")
    source = models.ForeignKey("sources.DataSource", verbose_name=_("data source"), on_delete=models.PROTECT,
                               related_name="+")
    data_item = models.ForeignKey("catalog.DataItem", verbose_name=_("data item"), on_delete=models.PROTECT,
                                  related_name="+")
    ts = models.DateTimeField(_("collection time"))
    field = models.CharField(_("field"), max_length=200)
    value = models.JSONField(_("value sent"), null=True, blank=True,
                             help_text=_("the value stored for the submission: as sent, or as an approved "
                                         "correction set it"))
    correction = models.ForeignKey("corrections.Correction", verbose_name=_("pending correction"), null=True,
                                   blank=True, on_delete=models.SET_NULL, related_name="+",
                                   help_text=_("asked when a resubmission changed the value; decided with the "
                                               "review"))

    class Meta:
        verbose_name = _("submitted reading")
        verbose_name_plural = _("submitted readings")
        constraints = [models.UniqueConstraint(fields=["source", "data_item", "ts"],
                                               name="entry_submissionreading_identity")]

    def __str__(self):
        return f"{self.field} @ {self.ts:%Y-%m-%d %H:%M:%S}"
