"""Writes of meter register settings and replacements (issue #12 item 2). Each is checked in the park it touches
(the caller passed the seam), validated, audited, and queues the register to be derived again whole."""

from __future__ import annotations

import math

from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms.models import model_to_dict
from django.utils.translation import gettext as _

from apps.core.services import record_change
from apps.quality.models import MeterReplacement, RegisterSetting
from apps.quality.registers.derive import REGISTER_MAX, queue_series

SETTING_FIELDS = ["source", "data_item", "modulus", "ct_ratio", "pt_ratio", "rated_power_kw", "max_delta_per_hour",
                  "note"]
REPLACEMENT_FIELDS = ["setting", "ts", "old_last", "new_first", "note"]
RATIO_MAX = 1e6  # CT 50 000/5 A is 10 000; a million leaves room and keeps reading × CT × PT finite
POWER_MAX = 1e9  # kW


def _replacement_dict(r: MeterReplacement) -> dict:
    d = model_to_dict(r, fields=REPLACEMENT_FIELDS)
    d["ts"] = r.ts.isoformat() if r.ts else None
    return d


def _number(errors: dict, name: str, value, *, low: float, high: float, required: bool = False,
            strict_low: bool = False):
    if value is None:
        if required:
            errors[name] = _("This field is required.")
        return
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) \
            or value < low or value > high or (strict_low and value <= low):
        errors[name] = _("Enter a number between %(low)s and %(high)s.") % {"low": f"{low:g}", "high": f"{high:g}"}


def check_setting(s: RegisterSetting) -> None:
    errors: dict = {}
    _number(errors, "modulus", s.modulus, low=0, high=REGISTER_MAX, strict_low=True)
    _number(errors, "ct_ratio", s.ct_ratio, low=0, high=RATIO_MAX, required=True, strict_low=True)
    _number(errors, "pt_ratio", s.pt_ratio, low=0, high=RATIO_MAX, required=True, strict_low=True)
    _number(errors, "rated_power_kw", s.rated_power_kw, low=0, high=POWER_MAX, strict_low=True)
    _number(errors, "max_delta_per_hour", s.max_delta_per_hour, low=0, high=REGISTER_MAX, strict_low=True)
    if s.source_id and s.data_item_id and not s.source.data_items.filter(pk=s.data_item_id).exists():
        errors["data_item"] = _("The data source does not report this data item.")
    if s.source_id and s.data_item_id and s.data_item.data_type != "number":
        errors["data_item"] = _("Only a numeric data item can be a register.")
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def save_register_setting(*, actor, setting: RegisterSetting | None = None, reason: str = "",
                          **fields) -> RegisterSetting:
    """Create or change the register setting of a source's data item (issue #12 item 2; R-9.1.3: consumption
    consistent with the register; R-9.3.2.1: a gap's advance spread, never zeros): its park is the source's; the
    register is derived again whole at the next run."""
    before = model_to_dict(setting, fields=SETTING_FIELDS) if setting and setting.pk else None
    old_series = (setting.source_id, setting.data_item_id) if before else None
    setting = setting or RegisterSetting()
    for key, value in fields.items():
        setattr(setting, key, value)
    check_setting(setting)
    setting.park_id = setting.source.park_id
    setting.full_clean()
    setting.save()
    after = model_to_dict(setting, fields=SETTING_FIELDS)
    record_change(actor=actor, action="register.create" if before is None else "register.update", obj=setting,
                  before=before, after=after, reason=reason, park_code=setting.park.code)
    if old_series and old_series != (setting.source_id, setting.data_item_id):
        # moved to another series: what was derived for the old one is no longer this setting's
        from apps.quality.models import Consumption, RegisterInterval

        RegisterInterval.objects.filter(setting=setting).delete()
        Consumption.objects.filter(setting=setting).delete()
    queue_series(setting.source_id, setting.data_item_id)
    return setting


@transaction.atomic
def delete_register_setting(*, actor, setting: RegisterSetting, reason: str = "") -> None:
    """Remove a register setting and what was derived from it (issue #12 item 2, R-9.1.3: the consumption series
    goes with the setting it was derived under); the readings stay as they are."""
    before = model_to_dict(setting, fields=SETTING_FIELDS)
    park_code = setting.park.code
    record_change(actor=actor, action="register.delete", obj=setting, before=before, reason=reason,
                  park_code=park_code)
    setting.delete()


@transaction.atomic
def save_replacement(*, actor, replacement: MeterReplacement | None = None, reason: str = "",
                     **fields) -> MeterReplacement:
    """Record (or change) a meter replacement of a register (issue #12 item 2, R-9.1.3: consumption consistent
    across the swap): the interval across it books the old meter's rest and the new meter's start; the register is
    derived again whole."""
    before = _replacement_dict(replacement) if replacement and replacement.pk else None
    replacement = replacement or MeterReplacement()
    for key, value in fields.items():
        setattr(replacement, key, value)
    errors: dict = {}
    _number(errors, "old_last", replacement.old_last, low=-REGISTER_MAX, high=REGISTER_MAX, required=True)
    _number(errors, "new_first", replacement.new_first, low=-REGISTER_MAX, high=REGISTER_MAX, required=True)
    if errors:
        raise ValidationError(errors)
    replacement.full_clean()
    replacement.save()
    setting = replacement.setting
    record_change(actor=actor, action="register.replacement" if before is None else "register.replacement_update",
                  obj=replacement, before=before, after=_replacement_dict(replacement),
                  reason=reason, park_code=setting.park.code)
    queue_series(setting.source_id, setting.data_item_id)
    return replacement


@transaction.atomic
def delete_replacement(*, actor, replacement: MeterReplacement, reason: str = "") -> None:
    """Remove a meter replacement (issue #12 item 2, R-9.1.3); the register is derived again whole."""
    setting = replacement.setting
    record_change(actor=actor, action="register.replacement_delete", obj=replacement,
                  before=_replacement_dict(replacement), reason=reason,
                  park_code=setting.park.code)
    replacement.delete()
    queue_series(setting.source_id, setting.data_item_id)
