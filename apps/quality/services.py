"""Writes for the rule library and alarms. Alarms are written here only (tests/test_layering.py): the
ingest pipeline, the device-state and gateway-health services call the functions below."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import QuerySet
from django.forms.models import model_to_dict
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.core.services import bump_config_version, record_change
from apps.quality.models import Alarm, BalanceGroup, BalanceMember, Rule
from apps.quality.rules import KINDS

RULE_FIELDS = ["name", "kind", "params", "severity", "park", "source", "data_item", "enabled",
               "message_zh", "message_en"]


PARAMS_MAX_DEPTH = 8


def _finite(value, depth: int = 0) -> bool:
    """No Infinity or NaN (JSON has no spelling for them: storing one failed in the database), no deep nesting."""
    if depth > PARAMS_MAX_DEPTH:
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v, depth + 1) for v in value)
    return True


def check_rule_params(kind_name: str, params, severity: str | None = None) -> None:
    """The kind exists and its parameters are a JSON object it accepts (R-9.2.3), and a check after storage
    (R-9.2.2) does not reject (the readings are stored); ValidationError at the field otherwise. Forms call it
    before saving, so the mistake is shown where it was typed."""
    kind = KINDS.get(kind_name)
    if kind is None:
        raise ValidationError({"kind": _("Unknown rule kind %(kind)s; choose one of %(kinds)s.") % {
            "kind": kind_name, "kinds": ", ".join(KINDS)}})
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise ValidationError({"params": _('Give the parameters as a JSON object, e.g. {"max": 10}.')})
    if not _finite(params):
        raise ValidationError({"params": _("Every number in the parameters must be finite and nesting at most "
                                           "%(depth)s deep.") % {"depth": PARAMS_MAX_DEPTH}})
    try:
        kind.validate_params(params)
    except ValueError as exc:
        raise ValidationError({"params": str(exc)}) from exc
    if severity is not None and kind.stage == "post" and severity not in kind.SEVERITIES:
        raise ValidationError({"severity": _("A check after storage cannot reject: the readings are stored "
                                             "already. Choose \"store and flag\" or \"store and warn\".")})


@transaction.atomic
def save_rule(*, actor, rule: Rule | None = None, reason: str = "", **fields) -> Rule:
    """Create or change a rule of the library (R-9.2.3). Live for the next batch, without a restart."""
    before = model_to_dict(rule, fields=RULE_FIELDS) if rule and rule.pk else None
    rule = rule or Rule()
    for key, value in fields.items():
        setattr(rule, key, value)
    check_rule_params(rule.kind, rule.params, rule.severity)
    if rule.source_id and rule.park_id and rule.source.park_id != rule.park_id:
        raise ValidationError({"source": _("The source belongs to another park.")})
    rule.full_clean()
    rule.save()
    record_change(actor=actor, action="rule.create" if before is None else "rule.update", obj=rule,
                  before=before, after=model_to_dict(rule, fields=RULE_FIELDS), reason=reason,
                  park_code=rule.park.code if rule.park_id else "")
    bump_config_version()
    return rule


BALANCE_FIELDS = ["name", "park", "main_source", "main_item", "interval", "aggregate", "tolerance_pct",
                  "tolerance_abs", "severity", "enabled"]


def _balance_snapshot(group: BalanceGroup) -> dict:
    out = model_to_dict(group, fields=BALANCE_FIELDS)
    out["members"] = sorted([m.source_id, m.data_item_id] for m in group.members.all())
    return out


@transaction.atomic
def save_balance_group(*, actor, group: BalanceGroup | None = None, members=None, reason: str = "",
                       **fields) -> BalanceGroup:
    """Create or change a balance group (R-9.2.2, cross-source consistency): a main meter and its sub-meters, all
    of the group's park, each with a numeric data item it delivers; ``members``: (source, data item) pairs that
    replace the group's (None: unchanged). Validated and audited; checked from the next run of the post checks."""
    before = _balance_snapshot(group) if group and group.pk else None
    group = group or BalanceGroup()
    for key, value in fields.items():
        setattr(group, key, value)
    problems = {}
    if group.tolerance_pct is None and group.tolerance_abs is None:
        problems["tolerance_pct"] = _("Give a tolerance: a percentage, an absolute value or both.")
    for name in ("tolerance_pct", "tolerance_abs"):
        v = getattr(group, name)
        if v is not None and (not math.isfinite(v) or v < 0 or v > 1e12):
            problems[name] = _("A tolerance is a number from 0 to 10¹².")
    if group.main_source_id and group.park_id and group.main_source.park_id != group.park_id:
        problems["main_source"] = _("The source belongs to another park.")
    if group.main_source_id and group.main_item_id and not _delivers(group.main_source, group.main_item):
        problems["main_item"] = _("The main meter does not deliver this numeric data item.")
    if problems:
        raise ValidationError(problems)
    group.full_clean()
    group.save()
    if members is not None:
        pairs = list(dict.fromkeys((s, i) for s, i in members))
        for source, item in pairs:
            if source.park_id != group.park_id:
                raise ValidationError({"members": _("The source belongs to another park.")})
            if (source.pk, item.pk) == (group.main_source_id, group.main_item_id):
                raise ValidationError({"members": _("The main meter cannot be its own sub-meter.")})
            if not _delivers(source, item):
                raise ValidationError({"members": _("Sub-meter %(source)s does not deliver the numeric data item "
                                                    "%(item)s.") % {"source": source.source_id, "item": item.code}})
        group.members.all().delete()
        BalanceMember.objects.bulk_create([BalanceMember(group=group, source=s, data_item=i) for s, i in pairs])
    if not group.members.exists() and group.enabled:
        raise ValidationError({"members": _("A balance group needs at least one sub-meter.")})
    record_change(actor=actor, action="balance_group.create" if before is None else "balance_group.update",
                  obj=group, before=before, after=_balance_snapshot(group), reason=reason,
                  park_code=group.park.code)
    return group


def _delivers(source, item) -> bool:
    return item.data_type == "number" and source.data_items.filter(pk=item.pk).exists()


class AlarmRaise(NamedTuple):
    """One problem to alarm on: the open alarm for (park, source, kind, code) counts ``count`` more."""

    park_id: int | None
    source_id: int | None
    kind: str
    code: str
    message_zh: str
    message_en: str
    count: int = 1
    severity: str = "reject"


# One statement for a whole batch of problems, in key order (two batches raising the same alarms lock them
# in the same order). The partial unique index uniq_open_alarm (NULLS NOT DISTINCT) is the conflict target.
ALARMS_UPSERT = """
INSERT INTO quality_alarm (park_id, source_id, kind, code, severity, message_zh, message_en, count, first_at,
                           last_at, state)
SELECT p, s, k, c, sv, mz, me, n, now(), now(), 'open'
FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::int[])
     AS u(p, s, k, c, sv, mz, me, n)
ORDER BY p NULLS FIRST, s NULLS FIRST, k, c
ON CONFLICT (park_id, source_id, kind, code) WHERE state = 'open'
DO UPDATE SET count = quality_alarm.count + EXCLUDED.count, last_at = now(),
              message_zh = EXCLUDED.message_zh, message_en = EXCLUDED.message_en
"""


def raise_alarms(problems: Iterable[AlarmRaise]) -> None:
    """Open an alarm per problem, or count more occurrences of the open alarm for the same problem
    (R-5.2.3.5: visible in the admin as soon as the caller's transaction commits, R-5.3.3). Set-based:
    one statement however many, in the caller's transaction (the ingest pipeline's hot path). Problems
    with the same key are merged: counts added, the last one's messages and severity kept."""
    merged: dict[tuple, AlarmRaise] = {}
    for a in problems:
        key = (a.park_id, a.source_id, a.kind, a.code)
        seen = merged.get(key)
        merged[key] = a._replace(count=a.count + seen.count) if seen else a
    if not merged:
        return
    rows = list(merged.values())
    with connection.cursor() as cur:
        cur.execute(ALARMS_UPSERT, [[a.park_id for a in rows], [a.source_id for a in rows], [a.kind for a in rows],
                                    [a.code for a in rows], [a.severity for a in rows],
                                    [a.message_zh for a in rows], [a.message_en for a in rows],
                                    [a.count for a in rows]])


def raise_alarm(*, park_id: int | None, source_id: int | None, kind: str, code: str, message_zh: str,
                message_en: str, count: int = 1, severity: str = "reject") -> None:
    """Open an alarm, or count one more occurrence of the open alarm for the same problem
    (R-5.2.3.5: visible in the admin as soon as the ingest transaction commits)."""
    raise_alarms([AlarmRaise(park_id, source_id, kind, code, message_zh, message_en, count, severity)])


def refresh_alarm(*, source, code: str, message_zh: str, message_en: str, at: datetime) -> bool:
    """The open alarm on ``source`` for ``code`` now says this, last seen ``at``, without counting an
    occurrence (a state reported again, e.g. a device still failing, R-8.1.2.1). False when none is open."""
    return bool(Alarm.objects.filter(source=source, code=code, state=Alarm.State.OPEN).update(
        message_zh=message_zh, message_en=message_en, last_at=at))


def close_alarms(*, source=None, sources: QuerySet | None = None, kind: str | None = None,
                 code: str | None = None, park=None) -> int:
    """The problem is gone (the device is back online, the gateway no longer refused, data came): close
    the open alarms of ``source`` (or of every source of the queryset ``sources``, in one statement; or the
    park's alarms of no source, ``park``: a third-party endpoint back, R-7.4.4.2) of this ``kind`` and/or
    ``code``. They stay, closed, as the record of the problem (R-5.3.3)."""
    if [source, sources, park].count(None) != 2 or (kind is None and code is None):
        raise ValueError("close_alarms needs one of source, sources or park, and a kind or a code")
    alarms = Alarm.objects.filter(state=Alarm.State.OPEN)
    if park is not None:
        alarms = alarms.filter(park=park, source=None)
    else:
        alarms = alarms.filter(source=source) if source is not None else alarms.filter(source__in=sources)
    if kind is not None:
        alarms = alarms.filter(kind=kind)
    if code is not None:
        alarms = alarms.filter(code=code)
    return alarms.update(state=Alarm.State.CLOSED)


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
