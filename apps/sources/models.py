"""Data sources: everything that produces readings, from a meter to a form to a third-party topic."""

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from apps.catalog.models import CollectionMethod
from apps.core.history import history_user

SOURCE_ID_RE = r"^[A-Za-z0-9._:-]{1,64}$"


class DataSource(models.Model):
    class Kind(models.TextChoices):
        METER = "meter", _("meter")
        MONITOR = "monitor", _("monitor")
        GATEWAY_CHANNEL = "gateway_channel", _("gateway channel")
        FORM = "form", _("form")
        THIRD_PARTY_TOPIC = "third_party_topic", _("third-party topic")
        FILE = "file", _("file")

    class Protocol(models.TextChoices):
        HTTP = "http", _("HTTP API")
        MQTT_JSON = "mqtt_json", _("MQTT (JSON)")
        MQTT_TLV = "mqtt_tlv", _("MQTT (TLV)")
        MODBUS_TCP = "modbus_tcp", _("Modbus TCP")
        MODBUS_RTU = "modbus_rtu", _("Modbus RTU")
        DLT645 = "dlt645", _("DL/T 645-2007")
        HJ212 = "hj212", _("HJ 212-2017")
        OPCUA = "opcua", _("OPC UA")
        FILE = "file", _("batch file")
        FORM = "form", _("web form")
        THIRD_PARTY = "third_party", _("third-party platform")
        SIMULATOR = "simulator", _("simulator")

    source_id = models.CharField(_("source ID"), max_length=64, unique=True,
                                 validators=[RegexValidator(SOURCE_ID_RE)],
                                 help_text=_("1–64 characters A–Z a–z 0–9 . _ : -, unique across the platform, "
                                             "e.g. JSTZ01-EM-0001"))
    park = models.ForeignKey("accounts.Park", verbose_name=_("park"), on_delete=models.PROTECT,
                             related_name="sources")
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.METER)
    protocol = models.CharField(_("protocol"), max_length=16, choices=Protocol.choices, default=Protocol.HTTP)
    data_items = models.ManyToManyField("catalog.DataItem", verbose_name=_("bound data codes"),
                                        related_name="sources", blank=True)
    collection_method = models.CharField(_("collection method"), max_length=20, choices=CollectionMethod.choices,
                                         default=CollectionMethod.REALTIME)
    expected_interval_s = models.PositiveIntegerField(
        _("expected interval (s)"), default=300, validators=[MinValueValidator(60), MaxValueValidator(366 * 86400)],
        help_text=_("How often readings should arrive: real-time sources 60–3600 s (default 300, R-5.2.1.4)."))
    enabled = models.BooleanField(_("enabled"), default=True)
    evidence_required = models.BooleanField(
        _("evidence required"), default=False,
        help_text=_("Readings need a supporting document (test report or proof of source), R-6.3–6.5."))
    manufacturer = models.CharField(_("manufacturer"), max_length=100, blank=True)
    model = models.CharField(_("model"), max_length=100, blank=True)
    serial_number = models.CharField(_("serial number"), max_length=100, blank=True)
    location = models.CharField(_("location"), max_length=200, blank=True)
    settings = models.JSONField(_("protocol settings"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    history = HistoricalRecords(m2m_fields=[data_items], get_user=history_user)

    class Meta:
        verbose_name = _("data source")
        verbose_name_plural = _("data sources")
        ordering = ["source_id"]

    def __str__(self):
        return f"{self.source_id} {self.name}"
