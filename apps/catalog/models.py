"""The data catalog of Appendix A: the code hierarchy, data items and enumerations (R-6.3–6.5)."""

from django.contrib.postgres.fields import ArrayField
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from apps.core.history import history_user

ITEM_CODE_RE = r"^(CS|CK|CO)\d{6}$"



def localized(zh: str, en: str) -> str:
    """The English name when the page speaks English and there is one, else the Chinese (the default language)."""
    return en if en and (get_language() or "").startswith("en") else zh

class CollectionMethod(models.TextChoices):
    REALTIME = "realtime", _("real-time collection")
    BATCH = "batch", _("batch upload")
    MANUAL = "manual", _("manual entry")
    THIRD_PARTY = "third_party", _("third-party platform")
    REMOTE_SENSING = "remote_sensing", _("remote sensing")
    FIELD_MEASUREMENT = "field_measurement", _("field measurement")


class DataType(models.TextChoices):
    NUMBER = "number", _("number")
    ENUM = "enum", _("enumeration")
    STRING = "string", _("string")
    DATE = "date", _("date")


class CatalogClass(models.Model):
    """One level above the indicator: major (CS), middle (CS01) or minor (CS0101) class."""

    class Level(models.TextChoices):
        MAJOR = "major", _("major class")
        MIDDLE = "middle", _("middle class")
        MINOR = "minor", _("minor class")

    code = models.CharField(_("code"), max_length=6, primary_key=True,
                            validators=[RegexValidator(r"^(CS|CK|CO)(\d{2}){0,2}$")])
    level = models.CharField(_("level"), max_length=8, choices=Level.choices)
    parent = models.ForeignKey("self", verbose_name=_("parent"), null=True, blank=True, on_delete=models.PROTECT,
                               related_name="children")
    name_zh = models.CharField(_("name (Chinese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100, blank=True)
    park = models.ForeignKey("accounts.Park", verbose_name=_("defined by park"), null=True, blank=True,
                             on_delete=models.PROTECT, help_text=_("empty for the standard's own classes"))

    class Meta:
        verbose_name = _("catalog class")
        verbose_name_plural = _("catalog classes")
        ordering = ["code"]

    def __str__(self):
        return f"{self.code} {localized(self.name_zh, self.name_en)}"


class Enumeration(models.Model):
    code = models.SlugField(_("code"), max_length=40, unique=True)
    name_zh = models.CharField(_("name (Chinese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("enumeration")
        verbose_name_plural = _("enumerations")
        ordering = ["code"]

    def __str__(self):
        return f"{self.code} {localized(self.name_zh, self.name_en)}"


class EnumValue(models.Model):
    enumeration = models.ForeignKey(Enumeration, verbose_name=_("enumeration"), on_delete=models.CASCADE,
                                    related_name="values")
    code = models.CharField(_("code"), max_length=40)
    label_zh = models.CharField(_("label (Chinese)"), max_length=100)
    label_en = models.CharField(_("label (English)"), max_length=100, blank=True)
    order = models.PositiveIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("enumeration value")
        verbose_name_plural = _("enumeration values")
        ordering = ["enumeration", "order", "code"]
        constraints = [models.UniqueConstraint(fields=["enumeration", "code"], name="uniq_enum_value")]

    def __str__(self):
        return f"{self.code} {localized(self.label_zh, self.label_en)}"


class DataItem(models.Model):
    """An indicator with its Appendix A code: what a reading's dataCode names."""

    code = models.CharField(_("code"), max_length=8, unique=True, validators=[RegexValidator(ITEM_CODE_RE)])
    minor = models.ForeignKey(CatalogClass, verbose_name=_("minor class"), on_delete=models.PROTECT,
                              related_name="items")
    park = models.ForeignKey("accounts.Park", verbose_name=_("defined by park"), null=True, blank=True,
                             on_delete=models.PROTECT, help_text=_("empty for the standard's Tables 1–3"))
    table = models.PositiveSmallIntegerField(_("table"), null=True, blank=True)
    section = models.CharField(_("clause"), max_length=16, blank=True)
    name_zh = models.CharField(_("name (Chinese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100, blank=True)
    data_type = models.CharField(_("data type"), max_length=8, choices=DataType.choices)
    unit = models.CharField(_("unit"), max_length=32, blank=True)
    precision = models.CharField(_("precision"), max_length=16, blank=True,
                                 help_text=_("a step such as 0.1, or unique / exact / day"))
    methods = ArrayField(models.CharField(max_length=20, choices=CollectionMethod.choices),
                         verbose_name=_("collection methods"), default=list)
    basis = models.CharField(_("basis standard"), max_length=100, blank=True)
    default_frequency = models.CharField(_("default frequency"), max_length=16, blank=True)
    enumeration = models.ForeignKey(Enumeration, verbose_name=_("enumeration"), null=True, blank=True,
                                    on_delete=models.PROTECT)
    evidence_required = models.BooleanField(
        _("evidence required"), default=False,
        help_text=_("values of this item entered in forms carry a supporting document: a test report, certificate "
                    "or filing (R-6.3–6.5)"))
    is_active = models.BooleanField(_("active"), default=True)
    history = HistoricalRecords(get_user=history_user)

    class Meta:
        verbose_name = _("data item")
        verbose_name_plural = _("data items")
        ordering = ["code"]

    def __str__(self):
        return f"{self.code} {localized(self.name_zh, self.name_en)}"
