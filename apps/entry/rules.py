"""The park's rule library (apps/quality, R-9.2.3) run on a filled form's item-bound values, as the filling page
types (R-7.3.1.2–3): the checks ``ingest_readings`` would run when the values are submitted through the park's
manual-entry source, answered at the fields before anything is stored.

A rule that rejects gives an error at its field (the submission cannot pass it: ingestion would refuse the
value); a rule that flags or warns gives a warning the page shows beside the field. Rules come from the same
compiled configuration ingestion uses (``apps.ingestion.config.current_config``), so a rule changed in the
portal takes effect here with the next call, as it does for every channel."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime

from django.utils import timezone

SOURCE_SUFFIX = "-FORM"


def _walk(definition: dict, values: dict):
    """(field, path, row index or None, value) of every item-bound value kept in ``values`` (cleaned)."""
    for s in definition.get("sections") or []:
        if s.get("repeat") is not None:
            rows = values.get(s["key"]) if isinstance(values.get(s["key"]), list) else []
            for i, row in enumerate(rows):
                for f in s.get("fields") or []:
                    if f.get("item") and isinstance(row, dict) and row.get(f["key"]) is not None:
                        yield f, f"{s['key']}[{i}].{f['key']}", i, row[f["key"]]
        else:
            for f in s.get("fields") or []:
                if f.get("item") and values.get(f["key"]) is not None:
                    yield f, f["key"], None, values[f["key"]]


def _problem(path: str, rule, failed: dict, lang: str) -> dict:
    messages = {"zh": rule.message_zh or rule.error.message("zh-hans", **failed),
                "en": rule.message_en or rule.error.message("en", **failed)}
    return {"path": path, "code": rule.error.code, "message": messages["en" if lang.startswith("en") else "zh"],
            "messages": messages, "rule": rule.name}


def rule_problems(definition: dict, park, period_start: date | None, cleaned: dict, *,
                  lang: str = "zh-hans") -> tuple[list[dict], list[dict]]:
    """``(errors, warnings)`` of the park's enabled ingest-stage rules on the item-bound values of ``cleaned``
    (R-9.2.3, R-7.3.1.2): the rules of every park or of ``park``, of any source or of the park's manual-entry
    source, of any item or of the field's item. Each problem is ``{"path", "code", "message", "messages",
    "rule"}``. ``period_start`` is when the values would be stored (today when not known yet)."""
    from apps.ingestion.config import current_config
    from apps.quality.rules import Candidate

    if park is None or not isinstance(cleaned, dict):
        return [], []
    cfg = current_config()
    park_id = getattr(park, "pk", park)
    if not any(r.park_id in (None, park_id) for r in cfg.rules):
        return [], []
    code = getattr(park, "code", None) or (cfg.parks[park_id].code if park_id in cfg.parks else "")
    source = cfg.sources.get(f"{code}{SOURCE_SUFFIX}")
    source_pk = source.pk if source is not None else None
    tz = zoneinfo.ZoneInfo(getattr(park, "time_zone", None) or "Asia/Shanghai")
    day = period_start or timezone.localdate()
    now = timezone.now()
    errors, warnings = [], []
    for f, path, _row, value in _walk(definition, cleaned):
        item = cfg.items.get(f["item"])
        if item is None:
            continue
        ts = datetime(day.year, day.month, day.day, tzinfo=tz)
        number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        text = value if isinstance(value, str) else None
        raw = {"sourceId": f"{code}{SOURCE_SUFFIX}", "dataCode": f["item"], "timestamp": ts.isoformat(),
               "value": value}
        cand = Candidate(number, text, ts, raw, now)
        for rule in cfg.rules:
            if not ((rule.park_id is None or rule.park_id == park_id)
                    and (rule.source_pk is None or (source_pk is not None and rule.source_pk == source_pk))
                    and (rule.item_pk is None or rule.item_pk == item.pk)):
                continue
            check = rule.kind.compile(rule.params, item)
            failed = check(cand) if check is not None else None
            if failed is not None:
                (errors if rule.severity == "reject" else warnings).append(_problem(path, rule, failed, lang))
    return errors, warnings
