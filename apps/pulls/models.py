"""Pull connectors (R-7.1.1.2, R-7.4.1.2): the platform reads a third party's REST API or a legacy system's
database on a schedule, from a saved cursor, and stores what it read through ``ingest_readings``.

Written by apps/pulls/services.py only; the secret (bearer token, API key, database password) is sealed
under the master key like the device keys (apps/core/crypto.py) and never shown again."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class Connector(models.Model):
    class Kind(models.TextChoices):
        REST = "rest", _("REST API of a third party")
        DATABASE = "database", _("legacy database")

    park = models.ForeignKey("accounts.Park", verbose_name=_("park"), on_delete=models.PROTECT,
                             related_name="pull_connectors")
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.REST)
    enabled = models.BooleanField(_("enabled"), default=True)
    interval_minutes = models.PositiveIntegerField(
        _("pull every (minutes)"), default=15, validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 60)],
        help_text=_("How often the platform pulls (R-7.1.1.2), 1 minute to 7 days."))
    settings = models.JSONField(
        _("connection settings"), default=dict, blank=True,
        help_text=_("REST: url, records, next, cursor_param, since_param, auth … Database: engine, host, port, "
                    "database, user, table, watermark … (see docs/pulls.md). No secrets here."))
    mapping = models.JSONField(
        _("field mapping"), default=dict, blank=True,
        help_text=_("Record field → where it is: a JSON pointer (/data/id) or dotted path (data.id) for REST, a "
                    "column name for databases; \"=CS010201\" is a constant."))
    secret_sealed = models.BinaryField(_("secret, sealed under the master key"), editable=False, null=True)
    cursor = models.JSONField(_("saved cursor"), null=True, blank=True, editable=False,
                              help_text=_("Where the next incremental pull starts: a next-page token or a "
                                          "watermark. Advanced only after the readings were committed."))
    next_run_at = models.DateTimeField(_("next run"), null=True, blank=True)
    last_run_at = models.DateTimeField(_("last run"), null=True, blank=True)
    last_error_code = models.CharField(_("last error code"), max_length=8, blank=True, default="")
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("pull connector")
        verbose_name_plural = _("pull connectors")
        ordering = ["park", "name"]
        constraints = [models.UniqueConstraint(fields=["park", "name"], name="pulls_connector_unique_name")]

    def __str__(self):
        return self.name

    @property
    def actor_label(self) -> str:
        """Who stored the readings, in batches and the audit trail: this connector, a process."""
        return f"pull:{self.kind}:{self.pk}"


class PullRun(models.Model):
    """One run of a connector: the run log shown in the portal (started, finished, pulled, accepted, …)."""

    class State(models.TextChoices):
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    class Mode(models.TextChoices):
        INCREMENTAL = "incremental", _("incremental")
        FULL = "full", _("full (window)")

    connector = models.ForeignKey(Connector, verbose_name=_("connector"), on_delete=models.CASCADE,
                                  related_name="runs")
    mode = models.CharField(_("mode"), max_length=12, choices=Mode.choices, default=Mode.INCREMENTAL)
    window_from = models.DateTimeField(_("window from"), null=True, blank=True)
    window_to = models.DateTimeField(_("window to"), null=True, blank=True)
    state = models.CharField(_("state"), max_length=8, choices=State.choices, default=State.RUNNING)
    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    pages = models.IntegerField(_("pages or batches"), default=0)
    pulled = models.IntegerField(_("pulled"), default=0)
    accepted = models.IntegerField(_("accepted"), default=0)
    duplicates = models.IntegerField(_("duplicates"), default=0)
    rejected = models.IntegerField(_("rejected"), default=0)
    cursor_before = models.JSONField(_("cursor before"), null=True, blank=True)
    cursor_after = models.JSONField(_("cursor after"), null=True, blank=True)
    error_code = models.CharField(_("error code"), max_length=8, blank=True, default="")
    error_params = models.JSONField(_("error details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("pull run")
        verbose_name_plural = _("pull runs")
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["connector", "-started_at"])]

    def __str__(self):
        return f"{self.connector} {self.started_at:%Y-%m-%d %H:%M:%S} {self.state}"

    def error_message(self, lang: str | None = None) -> str:
        """The stopping error in the page's language, from its code and details."""
        from apps.core.errors import REGISTRY

        err = REGISTRY.get(self.error_code)
        return err.message(lang, **self.error_params) if err else ""
