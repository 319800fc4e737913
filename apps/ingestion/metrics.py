"""Prometheus metrics of the ingestion pipeline and its processes, served at /metrics (R-5.2.3.1 access-state
monitoring, R-5.2.3.2 d), with the maintained ``prometheus_client``. docs/operations-health.md lists them.

Counters and histograms are counted where they happen (``observe_batch`` after ingest_readings commits).
With ``PROMETHEUS_MULTIPROC_DIR`` set (the run command sets it and empties it at start), every process of the
machine (gunicorn's workers, the MQTT consumer, the HJ 212 listener, Celery workers) writes them under that
directory and /metrics adds them up. What is a state rather than an event (consumer lag, heartbeats, Celery
queue depths, open alarms) is read at scrape time from Redis and the database, so it is true across hosts.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import time
from collections import Counter as Tally

from django.conf import settings
from django.http import HttpResponse, JsonResponse

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # prometheus_client needs it to exist before the first value
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

from prometheus_client import (  # noqa: E402 - after the directory exists
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily  # noqa: E402

log = logging.getLogger("carbonpark.metrics")

READINGS_ACCEPTED = Counter("carbonpark_readings_accepted", "Readings stored, by channel.", ["channel"])
READINGS_DUPLICATES = Counter("carbonpark_readings_duplicates",
                              "Readings received again and logged, not stored twice (R-8.4.2.4), by channel.",
                              ["channel"])
READINGS_REJECTED = Counter("carbonpark_readings_rejected",
                            "Records rejected and kept as rejections, by channel and error code.", ["channel", "code"])
BATCH_SECONDS = Histogram("carbonpark_ingest_batch_seconds",
                          "Time of one ingest_readings call that committed, by channel.", ["channel"],
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))


def observe_batch(channel: str, result, started: float) -> None:
    """Count one committed batch (``started``: its time.perf_counter() at the start). Never raises: the
    batch is already stored."""
    try:
        if result.accepted:
            READINGS_ACCEPTED.labels(channel).inc(result.accepted)
        if result.duplicates:
            READINGS_DUPLICATES.labels(channel).inc(result.duplicates)
        for code, n in Tally(r["code"] for r in result.rejected).items():
            READINGS_REJECTED.labels(channel, code).inc(n)
        BATCH_SECONDS.labels(channel).observe(time.perf_counter() - started)
    except Exception:  # noqa: BLE001
        log.exception("metrics of a %s batch not counted", channel)


# Kombu's Redis transport keeps priorities 3, 6 and 9 in lists of their own beside the queue's.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


class StateCollector:
    """What is read at scrape time: heartbeats and MQTT consumer lag, Celery queue depths, open alarms."""

    def collect(self):
        from apps.core import heartbeat

        up = GaugeMetricFamily("carbonpark_dependency_up", "1 when the dependency answers.", labels=["dependency"])
        try:
            client = heartbeat._redis()
            instances = heartbeat.read(client)
            yield from self._heartbeats(instances)
            yield from self._queues(client)
            up.add_metric(["redis"], 1)
        except Exception:  # noqa: BLE001 - a scrape reports what it can
            up.add_metric(["redis"], 0)
        try:
            yield self._alarms()
            yield from self._rollups()
            up.add_metric(["database"], 1)
        except Exception:  # noqa: BLE001
            up.add_metric(["database"], 0)
        yield up

    def _heartbeats(self, instances):
        from apps.core import heartbeat

        evaluated = heartbeat.evaluate(instances)
        comp = GaugeMetricFamily("carbonpark_component_up",
                                 "1 when every instance of an expected component beats and keeps up; "
                                 "0 when one is stalled or none is running.", labels=["component"])
        for name, c in evaluated.items():
            comp.add_metric([name], 1 if c["status"] == "ok" else 0)
        age = GaugeMetricFamily("carbonpark_heartbeat_age_seconds", "Seconds since the instance last beat.",
                                labels=["component", "instance"])
        pending = GaugeMetricFamily("carbonpark_mqtt_consumer_pending_messages",
                                    "MQTT messages received and not yet committed.", labels=["instance"])
        oldest = GaugeMetricFamily("carbonpark_mqtt_consumer_oldest_pending_seconds",
                                   "Age of the oldest MQTT message received and not yet committed.",
                                   labels=["instance"])
        last = GaugeMetricFamily("carbonpark_mqtt_consumer_last_commit_age_seconds",
                                 "Seconds since the consumer last committed a batch.", labels=["instance"])
        for component, found in instances.items():
            for i in found:
                age.add_metric([component, i.name], i.age)
                if component == "mqtt":
                    pending.add_metric([i.name], i.fields.get("pending", 0))
                    oldest.add_metric([i.name], i.fields.get("oldestPendingAge", 0.0))
                    if i.fields.get("lastCommitAge") is not None:
                        last.add_metric([i.name], i.fields["lastCommitAge"])
        yield from (comp, age, pending, oldest, last)

    def _queues(self, client):
        depth = GaugeMetricFamily("carbonpark_celery_queue_length", "Celery tasks waiting in the Redis broker.",
                                  labels=["queue"])
        pipe = client.pipeline()
        for q in settings.METRICS_CELERY_QUEUES:
            for suffix in _PRIORITY_SUFFIXES:
                pipe.llen(q + suffix)
        lengths = pipe.execute()
        for n, q in enumerate(settings.METRICS_CELERY_QUEUES):
            depth.add_metric([q], sum(lengths[n * len(_PRIORITY_SUFFIXES):(n + 1) * len(_PRIORITY_SUFFIXES)]))
        yield depth

    def _alarms(self):
        from django.db.models import Count

        from apps.quality.models import Alarm

        fam = GaugeMetricFamily("carbonpark_alarms_open", "Alarms not closed, by kind, severity and state.",
                                labels=["kind", "severity", "state"])
        rows = (Alarm.objects.exclude(state=Alarm.State.CLOSED).order_by()
                .values_list("kind", "severity", "state").annotate(n=Count("id")))
        for kind, severity, state, n in rows:
            fam.add_metric([kind, severity, state], n)
        return fam


    def _rollups(self):
        from apps.ingestion.rollups import lag

        queued, age = lag()
        yield GaugeMetricFamily("carbonpark_rollup_queued_ranges",
                                "Series ranges queued for the rollups' refresh (ingestion_rollup_dirty).", value=queued)
        yield GaugeMetricFamily("carbonpark_rollup_lag_seconds",
                                "Age of the oldest queued range: how far the rollups are behind ingest "
                                "(0 when none is queued).", value=age)


class _Local:
    """This process's own metrics (no multiprocess directory: tests, runserver)."""

    def collect(self):
        return REGISTRY.collect()


def _allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    auth = request.META.get("HTTP_AUTHORIZATION", "")
    if token and auth.startswith("Bearer ") and secrets.compare_digest(auth[7:].strip(), token):
        return True
    # A loopback peer is a local scraper, unless it is the front (nginx) relaying someone else.
    if request.META.get("HTTP_X_FORWARDED_FOR") or request.META.get("HTTP_X_REAL_IP"):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def metrics_view(request):
    """Prometheus text exposition: loopback clients, or ``Authorization: Bearer <METRICS_TOKEN>``."""
    if not _allowed(request):
        from apps.core.errors import E1008

        detail = {"zh": "指标仅对本机或持有 METRICS_TOKEN 的抓取方开放", "en": "metrics are served to loopback "
                  "clients, or with Authorization: Bearer <METRICS_TOKEN>"}
        lang = getattr(request, "LANGUAGE_CODE", "zh-hans") or "zh-hans"
        return JsonResponse({"code": E1008.code, "message": E1008.message(
            lang, detail=detail["en" if lang.startswith("en") else "zh"])}, status=403)
    registry = CollectorRegistry()
    path = settings.PROMETHEUS_MULTIPROC_DIR
    if path:
        os.makedirs(path, exist_ok=True)
        multiprocess.MultiProcessCollector(registry, path=path)
    else:
        registry.register(_Local())
    registry.register(StateCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
