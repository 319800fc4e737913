"""The Celery app and the whole beat schedule (one place for every periodic job)."""

import atexit
import os
import socket

from celery import Celery
from celery.schedules import crontab
from celery.signals import beat_init, worker_ready, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carbonpark.settings")

app = Celery("carbonpark")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # R-7.4.4.3: anomalies of third-party data posted back to the platforms' callbacks (and retries when due).
    "dispatch-callbacks": {"task": "apps.integrations.tasks.dispatch_callbacks", "schedule": 15.0},
    # R-7.4.4.2: third-party platforms' endpoints probed and timed; failover to the backup URL.
    "probe-platforms": {"task": "apps.integrations.tasks.probe_platforms", "schedule": 60.0},
    # R-5.2.2.6: keys rotate at most every 30 days; the rotation waits for the device's ack.
    "rotate-due-keys": {"task": "apps.sources.tasks.rotate_due_keys", "schedule": crontab(minute=5)},
    # sources silent for three expected intervals are flagged and alarmed.
    "flag-silent-sources": {"task": "apps.sources.tasks.flag_silent_sources", "schedule": 60.0},
    # Downlink commands past their expiresAt end as expired.
    "expire-commands": {"task": "apps.sources.tasks.expire_commands", "schedule": 60.0},
    # Idempotency keys are kept IDEMPOTENCY_TTL_HOURS, then forgotten (interfaces.md §3).
    # Readings partitions three months ahead; retention (detach, archive, drop) only when configured.
    "maintain-reading-partitions": {
        "task": "apps.ingestion.tasks.maintain_reading_partitions",
        "schedule": crontab(hour=2, minute=41),
    },
    # Rollups within 60 s of ingest (issue #9): each run takes the dirty log for ~8 s at most, under an advisory
    # lock; a run not started within 10 s is dropped (the next one does its work).
    "refresh-rollups": {"task": "apps.ingestion.tasks.refresh_rollups", "schedule": 10.0,
                        "options": {"expires": 10.0}},
    # A pending rebuild (the upgrade's, ingestion 0012): one monthly partition per run, newest first, under the
    # same lock, so refreshes run between partitions. Nothing pending: one cheap query.
    "rebuild-rollups": {"task": "apps.ingestion.tasks.rebuild_rollups", "schedule": 30.0,
                        "options": {"expires": 30.0}},
    # R-7.4.1.2: the legacy shared folder's complete files, loaded into their parks; one scan at a time (an
    # advisory lock), so a long file only delays the next scan. Loads whose process died are closed (E9126).
    "scan-batch-folder": {"task": "apps.batch.tasks.scan_batch_folder", "schedule": 60.0,
                          "options": {"expires": 60.0}},
    # gaps of the readings stored since the last run, listed (apps/quality/gaps.py); the first run
    # scans everything. Under an advisory lock; a run not started within its period is dropped.
    "find-gaps": {"task": "apps.quality.tasks.find_gaps", "schedule": 60.0, "options": {"expires": 60.0}},
    # checks after storage (post rules, balance groups) over the data stored since the last run
    # (apps/quality/postchecks/); hits beside the readings, alarmed. Under an advisory lock, like find-gaps. Every
    # 30 s: a reading's check then lags its ingest by at most about 30 s + the rollup refresh + the run (issue #12:
    # <= 60 s at 10 000 readings/s, bench/post_check_lag.py); at 60 s the wait alone could reach the limit.
    "post-checks": {"task": "apps.quality.tasks.post_checks", "schedule": 30.0, "options": {"expires": 30.0}},
    # Issue #12 item 2: consumption per interval, hour, day and month derived from meter registers, kept current
    # from the queue the rollup refresher's take feeds (apps/quality/registers/derive.py). Under an advisory lock.
    "derive-consumption": {"task": "apps.quality.tasks.derive_consumption", "schedule": 30.0,
                           "options": {"expires": 30.0}},
    # R-9.3.2.1, R-9.3.1: open gaps filled in the standard's order (resend to the source and wait
    # GAP_REFETCH_WAIT_S, then interpolation, then a profile), minor anomalies repaired (apps/quality/filling).
    "fill-gaps": {"task": "apps.quality.tasks.fill_gaps", "schedule": 120.0, "options": {"expires": 120.0}},
    # the monthly quality indicators of this month and the last, recomputed whole from the rollups, gaps,
    # post-check hits and receipt times (apps/quality/indicators/compute.py); serialised by an advisory lock.
    "quality-indicators": {"task": "apps.quality.tasks.quality_indicators", "schedule": crontab(minute=23),
                           "options": {"expires": 1800.0}},
    # Resumable uploads abandoned past their Upload-Expires: marked expired, their bytes removed (apps/uploads).
    "expire-uploads": {"task": "apps.uploads.tasks.expire_uploads", "schedule": crontab(minute="*/15")},
    # .b–d: overdue data reminded to the park's staff once per item and period, escalated to its
    # administrators after DEADLINE_ESCALATE_WORKDAYS working days (apps/quality/deadlines).
    "send-deadline-reminders": {"task": "apps.quality.tasks.send_deadline_reminders",
                                "schedule": crontab(minute="*/15"), "options": {"expires": 600.0}},
    # R-7.1.1.2, R-7.4.1.2: pull connectors (third parties' REST APIs, legacy databases) whose next run is due,
    # each run its own task under a per-connector advisory lock (apps/pulls).
    "run-due-pulls": {"task": "apps.pulls.tasks.run_due_pulls", "schedule": 60.0, "options": {"expires": 60.0}},
    "purge-idempotency-keys": {
        "task": "apps.ingestion.tasks.purge_idempotency_keys",
        "schedule": crontab(minute=17),
    },
}


# Heartbeats (docs/operations-health.md): the worker's main process and beat each beat from a thread;
# /healthz turns 503 when one stops. A clean stop removes the entry.
_heartbeats = {}


@worker_ready.connect
def _start_worker_heartbeat(sender=None, **kwargs):
    from apps.core.heartbeat import Heartbeat

    _heartbeats["worker"] = Heartbeat("worker", getattr(sender, "hostname", None) or socket.gethostname()).start()


@worker_shutdown.connect
def _stop_worker_heartbeat(**kwargs):
    if "worker" in _heartbeats:
        _heartbeats.pop("worker").stop()


@beat_init.connect
def _start_beat_heartbeat(**kwargs):
    from apps.core.heartbeat import Heartbeat

    atexit.register(Heartbeat("beat", socket.gethostname()).start().stop)
