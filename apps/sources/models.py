"""Data sources: everything that produces readings, from a meter to a form to a third-party topic."""

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from apps.catalog.models import CollectionMethod
from apps.core.history import history_user
from apps.sources.accuracy import AccuracyClass, InstrumentType

SOURCE_ID_RE = r"^[A-Za-z0-9._:-]{1,64}$"


class DataSource(models.Model):
    class Kind(models.TextChoices):
        METER = "meter", _("meter")
        MONITOR = "monitor", _("monitor")
        GATEWAY_CHANNEL = "gateway_channel", _("gateway channel")
        FORM = "form", _("form")
        THIRD_PARTY_TOPIC = "third_party_topic", _("third-party topic")
        FILE = "file", _("file")
        GATEWAY = "gateway", _("gateway (edge agent)")

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
    encryption_required = models.BooleanField(
        _("encryption required"), default=False,
        help_text=_("Refuse plaintext: payloads must come in the CPE1 AES-256-GCM envelope (R-5.2.2.6)."))
    evidence_required = models.BooleanField(
        _("evidence required"), default=False,
        help_text=_("Readings need a supporting document (test report or proof of source), R-6.3–6.5."))
    manufacturer = models.CharField(_("manufacturer"), max_length=100, blank=True)
    model = models.CharField(_("model"), max_length=100, blank=True)
    serial_number = models.CharField(_("serial number"), max_length=100, blank=True)
    location = models.CharField(_("location"), max_length=200, blank=True)
    # the instrument's accuracy class and what GB 17167-2006 Table 3 requires of its kind
    instrument_type = models.CharField(
        _("instrument type (GB 17167)"), max_length=20, choices=InstrumentType.choices, blank=True,
        help_text=_("The row of GB 17167-2006 Table 3 the instrument falls under: it sets the accuracy class "
                    "required, e.g. 0.5S for a park's main electricity meter (class II metering point)."))
    accuracy_class = models.CharField(_("accuracy class"), max_length=8, choices=AccuracyClass.choices, blank=True,
                                      help_text=_("The instrument's accuracy class as on its nameplate."))
    settings = models.JSONField(_("protocol settings"), default=dict, blank=True)
    gateway = models.ForeignKey(
        "self", verbose_name=_("gateway"), null=True, blank=True, on_delete=models.PROTECT, related_name="members",
        limit_choices_to={"kind": "gateway"},
        help_text=_("The edge gateway that polls this source and publishes for it. The broker's ACL "
                    "(manage.py mosquitto_acl) lets the gateway's MQTT user write only for its members."))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    history = HistoricalRecords(m2m_fields=[data_items], get_user=history_user)

    class Meta:
        verbose_name = _("data source")
        verbose_name_plural = _("data sources")
        ordering = ["source_id"]

    def __str__(self):
        return f"{self.source_id} {self.name}"

    def clean(self):
        super().clean()
        if self.gateway_id is None:
            return
        if self.kind == self.Kind.GATEWAY:
            raise ValidationError({"gateway": _("A gateway does not sit behind another gateway.")})
        gateway = self.gateway
        if gateway.kind != self.Kind.GATEWAY:
            raise ValidationError({"gateway": _("%(id)s is not a gateway.") % {"id": gateway.source_id}})
        if gateway.park_id != self.park_id:
            raise ValidationError({"gateway": _("The gateway %(id)s belongs to another park.") % {
                "id": gateway.source_id}})


class DeviceState(models.Model):
    """Where a source stands now: online or offline (MQTT status topic and Last Will), when it was last
    heard from, and whether it has gone silent beyond its expected interval (R-8.1.2.1)."""

    class State(models.TextChoices):
        UNKNOWN = "unknown", _("unknown")
        ONLINE = "online", _("online")
        OFFLINE = "offline", _("offline")

    source = models.OneToOneField(DataSource, verbose_name=_("data source"), on_delete=models.CASCADE,
                                  primary_key=True, related_name="device_state")
    state = models.CharField(_("state"), max_length=8, choices=State.choices, default=State.UNKNOWN)
    state_since = models.DateTimeField(_("since"), null=True, blank=True)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)
    silent = models.BooleanField(_("silent"), default=False,
                                 help_text=_("No data for longer than three expected intervals."))
    # device health as the gateway reports it (its status topic): the platform alarms on a failing device
    health_at = models.DateTimeField(_("health reported"), null=True, blank=True)
    last_good_poll_at = models.DateTimeField(_("last good poll"), null=True, blank=True)
    # db_default: touch() inserts rows in raw SQL
    consecutive_failures = models.PositiveIntegerField(_("consecutive failed polls"), default=0, db_default=0)
    last_error_code = models.CharField(_("last error code"), max_length=8, blank=True, default="", db_default="")
    last_error = models.CharField(_("last error"), max_length=300, blank=True, default="", db_default="")

    class Meta:
        verbose_name = _("device state")
        verbose_name_plural = _("device states")

    def __str__(self):
        return f"{self.source_id} {self.state}"


class StateChange(models.Model):
    """The history of a source's state: a new row for every change, never overwritten."""

    source = models.ForeignKey(DataSource, verbose_name=_("data source"), on_delete=models.CASCADE,
                               related_name="state_changes")
    state = models.CharField(_("state"), max_length=8, choices=DeviceState.State.choices)
    at = models.DateTimeField(_("time"), db_index=True)
    reason = models.CharField(_("reason"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("state change")
        verbose_name_plural = _("state history")
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.source_id} → {self.state} @ {self.at:%Y-%m-%d %H:%M:%S}"


class Command(models.Model):
    """A downlink command (R-5.3.1, interfaces.md §2) and its delivery state."""

    class Type(models.TextChoices):
        SET_INTERVAL = "set_interval", _("set collection interval")
        POLL_NOW = "poll_now", _("poll now")
        ROTATE_KEY = "rotate_key", _("rotate encryption key")
        RESEND = "resend", _("resend a time range")
        CONTROL = "control", _("device control")

    class State(models.TextChoices):
        PENDING = "pending", _("pending")
        DELIVERED = "delivered", _("delivered to the broker")
        ACKNOWLEDGED = "acknowledged", _("acknowledged by the device")
        FAILED = "failed", _("failed")
        EXPIRED = "expired", _("expired")

    cmd_id = models.CharField(_("command ID"), max_length=40, unique=True)
    source = models.ForeignKey(DataSource, verbose_name=_("data source"), on_delete=models.CASCADE,
                               related_name="commands")
    type = models.CharField(_("type"), max_length=16, choices=Type.choices)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    state = models.CharField(_("state"), max_length=12, choices=State.choices, default=State.PENDING,
                             db_index=True)
    created_by = models.CharField(_("created by"), max_length=150)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"))
    published_at = models.DateTimeField(_("published"), null=True, blank=True)
    acknowledged_at = models.DateTimeField(_("acknowledged"), null=True, blank=True)
    result = models.CharField(_("result"), max_length=16, blank=True)
    message = models.TextField(_("message"), blank=True)

    class Meta:
        verbose_name = _("downlink command")
        verbose_name_plural = _("downlink commands")
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.cmd_id} {self.type} → {self.source_id} ({self.state})"


class SourceKey(models.Model):
    """One AES-256 key of a key ring: a source's for its messages, a park's for its files (R-5.2.2.6,
    R-8.2.2.3). Stored encrypted under CARBONPARK_MASTER_KEY, never in plain text, never logged."""

    class State(models.TextChoices):
        PENDING = "pending", _("pending (sent, not yet acknowledged)")
        ACTIVE = "active", _("active")
        RETIRED = "retired", _("retired (decrypts only)")

    key_id = models.CharField(_("key ID"), max_length=64, unique=True)
    source = models.ForeignKey(DataSource, verbose_name=_("data source"), null=True, blank=True,
                               on_delete=models.CASCADE, related_name="keys")
    park = models.ForeignKey("accounts.Park", verbose_name=_("park (file keys)"), null=True, blank=True,
                             on_delete=models.CASCADE, related_name="file_keys")
    sealed = models.BinaryField(_("key, sealed under the master key"), editable=False)
    state = models.CharField(_("state"), max_length=8, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    activated_at = models.DateTimeField(_("activated"), null=True, blank=True)
    retired_at = models.DateTimeField(_("retired"), null=True, blank=True)
    decrypt_until = models.DateTimeField(_("decrypts until"), null=True, blank=True)

    class Meta:
        verbose_name = _("encryption key")
        verbose_name_plural = _("encryption keys")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(source__isnull=False) | models.Q(park__isnull=False),
                                   name="key_has_owner"),
            models.UniqueConstraint(fields=["source"], condition=models.Q(state="active"), name="one_active_key"),
            models.UniqueConstraint(fields=["park"], condition=models.Q(state="active", source__isnull=True),
                                    name="one_active_file_key"),
        ]

    def __str__(self):
        return f"{self.key_id} ({self.get_state_display()})"
