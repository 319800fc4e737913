"""Form definitions and their published versions (R-7.3.1).

A ``Form`` holds a draft definition its park administrator edits; ``publish`` freezes it as a ``FormVersion``
with the catalog attributes of its items resolved into it, so a version renders and validates the same forever
(the database refuses to change or delete a published version: its immutability is its history)."""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

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
