"""Writes for the rule library and alarms."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.forms.models import model_to_dict
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.core.services import bump_config_version, record_change
from apps.quality.models import Alarm, Rule
from apps.quality.rules import KINDS

RULE_FIELDS = ["name", "kind", "params", "severity", "park", "source", "data_item", "enabled",
               "message_zh", "message_en"]


@transaction.atomic
def save_rule(*, actor, rule: Rule | None = None, reason: str = "", **fields) -> Rule:
    """Create or change a rule of the library (R-9.2.3). Live for the next batch, without a restart."""
    before = model_to_dict(rule, fields=RULE_FIELDS) if rule and rule.pk else None
    rule = rule or Rule()
    for key, value in fields.items():
        setattr(rule, key, value)
    kind = KINDS.get(rule.kind)
    if kind is None:
        raise ValidationError({"kind": _("Unknown rule kind %(kind)s; choose one of %(kinds)s.") % {
            "kind": rule.kind, "kinds": ", ".join(KINDS)}})
    try:
        kind.validate_params(rule.params or {})
    except ValueError as exc:
        raise ValidationError({"params": str(exc)}) from exc
    if rule.source_id and rule.park_id and rule.source.park_id != rule.park_id:
        raise ValidationError({"source": _("The source belongs to another park.")})
    rule.full_clean()
    rule.save()
    record_change(actor=actor, action="rule.create" if before is None else "rule.update", obj=rule,
                  before=before, after=model_to_dict(rule, fields=RULE_FIELDS), reason=reason,
                  park_code=rule.park.code if rule.park_id else "")
    bump_config_version()
    return rule


def raise_alarm(*, park_id: int | None, source_id: int | None, kind: str, code: str, message_zh: str,
                message_en: str, count: int = 1, severity: str = "reject") -> None:
    """Open an alarm, or count one more occurrence of the open alarm for the same problem
    (R-5.2.3.5: visible in the admin as soon as the ingest transaction commits)."""
    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO quality_alarm (park_id, source_id, kind, code, severity, message_zh, message_en,
                                       count, first_at, last_at, state)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now(), now(), 'open')
            ON CONFLICT (park_id, source_id, kind, code) WHERE state = 'open'
            DO UPDATE SET count = quality_alarm.count + EXCLUDED.count, last_at = now(),
                          message_zh = EXCLUDED.message_zh, message_en = EXCLUDED.message_en
            """,
            [park_id, source_id, kind, code, severity, message_zh, message_en, count],
        )


@transaction.atomic
def acknowledge_alarm(*, actor, alarm: Alarm, close: bool = False) -> Alarm:
    """A person takes an alarm in hand or closes it (R-5.3.3); audited."""
    before = {"state": alarm.state}
    alarm.state = Alarm.State.CLOSED if close else Alarm.State.ACKNOWLEDGED
    alarm.acknowledged_by = actor if getattr(actor, "pk", None) else None
    alarm.acknowledged_at = timezone.now()
    alarm.save(update_fields=["state", "acknowledged_by", "acknowledged_at"])
    record_change(actor=actor, action="alarm.acknowledge", obj=alarm, before=before, after={"state": alarm.state},
                  park_code=alarm.park.code if alarm.park_id else "")
    return alarm
