"""Checks after storage (R-9.2.2, R-9.1.3): the post-stage rule kinds of the rule library and the balance groups,
run set-based over newly stored data by the beat task ``post-checks``; each hit logged beside the data with time,
result and reason (R-9.2.3) in quality_posthit, and alarmed. docs/post-checks.md.

- ``rows``: checks of single readings against their neighbours (jump, frozen, outlier) over the readings;
- ``consistency``: balance groups and ratios over the rollups, and the same series from two sources.

One run: under an advisory lock, the queue (``quality_postcheck_dirty``) is taken once into a temporary scope
table, then each check runs as one statement over every (check, series) pair in scope; the alarms of the new
hits are raised in one statement at the end, in the same transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction

from apps.quality.models import Alarm
from apps.quality.postchecks import consistency, rows
from apps.quality.services import AlarmRaise, raise_alarms

# pg_try_advisory_xact_lock key: "post". Two runs never overlap (the second finds the queue taken).
LOCK = 0x706F7374


@dataclass
class PostRun:
    full: bool = False
    series: int = 0
    checked: dict = field(default_factory=dict)  # statement -> (rule, series) pairs checked
    hits: dict = field(default_factory=dict)  # kind -> new hits
    timings: dict = field(default_factory=dict)  # statement -> seconds
    busy: bool = False
    seconds: float = 0.0


def run_post_checks(*, full: bool = False, settle: float | None = None) -> PostRun:
    """Run the checks after storage (R-9.2.2, R-9.1.3) over the data stored since the last run: one set-based
    statement per check (module docstring), each new hit logged with time, result and reason (R-9.2.3) and
    alarmed through raise_alarms; ``full`` checks every stored reading and every ended interval instead.
    ``settle``: seconds after an interval's end before balance groups and ratios judge it (default
    POST_CHECK_SETTLE_S). Idempotent. Runs under an advisory lock: a run that finds another in progress returns
    ``busy`` and leaves the queue to it."""
    started = time.monotonic()
    run = PostRun()
    settle = settings.POST_CHECK_SETTLE_S if settle is None else settle
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_xact_lock(%s)", [LOCK])
        if not cur.fetchone()[0]:
            return PostRun(busy=True, seconds=time.monotonic() - started)
        if full:
            cur.execute("INSERT INTO quality_postcheck_dirty (source_id) VALUES (NULL)")
        cur.execute(rows.SCOPE_TABLE)
        cur.execute("DELETE FROM quality_postcheck_scope")
        cur.execute(rows.TAKE)
        run.series = cur.rowcount
        run.full = full or bool(run.series and _was_full(cur))
        cur.execute("ANALYZE quality_postcheck_scope")
        problems = []
        run.hits.update({"jump": 0, "frozen": 0, "outlier": 0})
        t0 = time.monotonic()
        cur.execute(rows.SIZES)
        cur.execute(rows.one_pass_sql([w for (w,) in cur.fetchall()]))
        found = cur.fetchall()
        run.timings["jump, frozen, outlier"] = time.monotonic() - t0
        run.checked["jump, frozen, outlier"] = found[0][6] if found else 0
        for park_id, source_id, _rule_id, name, severity, count, _series, kind in found:
            if park_id is None:
                continue
            run.hits[kind] += count
            msg = rows.CODES[kind].messages(count=count, rule=name)
            problems.append(AlarmRaise(park_id, source_id, Alarm.Kind.VALIDATION, rows.CODES[kind].code, msg["zh"],
                                       msg["en"], count, severity))
        for label, kind, robust, sql, code in rows.STATEMENTS:
            t0 = time.monotonic()
            cur.execute(sql, {"kind": kind, "robust": robust})
            found = cur.fetchall()
            run.timings[label] = time.monotonic() - t0
            run.checked[label] = found[0][6] if found else 0
            run.hits.setdefault(kind, 0)
            for park_id, source_id, _rule_id, name, severity, count, _pairs in found:
                if park_id is None:
                    continue
                run.hits[kind] += count
                msg = code.messages(count=count, rule=name)
                problems.append(AlarmRaise(park_id, source_id, Alarm.Kind.VALIDATION, code.code, msg["zh"],
                                           msg["en"], count, severity))
        problems += consistency.run(cur, settle, run.hits, run.timings)
        raise_alarms(problems)
    run.seconds = time.monotonic() - started
    return run


def _was_full(cur) -> bool:
    cur.execute("SELECT bool_or(lo = '-infinity') FROM quality_postcheck_scope")
    return bool(cur.fetchone()[0])
