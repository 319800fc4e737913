"""Constants of the MQTT benchmark and its small helpers (output ones come from bench.http_ingest)."""

from __future__ import annotations

import resource
from datetime import timedelta

from bench.http_ingest.common import ITEM_CODE, PARK_CODE, PARK_TZ, ROOT, TS_BASE, fmt, say  # noqa: F401

BENCH_DB = "carbonpark_bench_mqtt"
REDIS_URL = "redis://127.0.0.1:6379/9"

SUSTAINED_TARGET = 30_000       # readings/s, two consumer processes, saturation
LATENCY_RATE = 10_000           # readings/s offered in the latency phase
LATENCY_P99_TARGET = 1.0        # seconds, publish -> commit
CONNECTIONS_TARGET = 10_000     # concurrent device connections held by the broker

# Each phase's readings start this many minutes per source after the previous phase's, so that no
# reading of one phase can be a duplicate of another's (the tables are truncated between phases too).
PHASE_MINUTES = {"warmup": 0, "saturation": 100_000, "poisoned": 500_000, "latency": 1_000_000}

# The poisoned saturation run (issue #7): these, alternately, among the good messages. Each must become one
# rejection (E1001, E5205) and cost the stream nothing else.
POISON_PAYLOADS = (b"x\x00y", b"[" * 5000 + b"]" * 5000)
POISON_TARGET = 0.10            # the poisoned run's throughput within 10 % of the clean run's


def topic_of(source_id: str) -> str:
    return f"carbonpark/{PARK_CODE}/{source_id}/data"


def ts_of(minute: int):
    """The collection time of a source's reading number ``minute`` (UTC, always in the past)."""
    return TS_BASE + timedelta(minutes=minute)


def raise_fd_limit() -> tuple[int, int]:
    """Soft RLIMIT_NOFILE up to the hard limit: the broker and the connection holder (children inherit
    it) each need more than 10 000 descriptors. Returns (soft, hard) in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        new = hard if hard != resource.RLIM_INFINITY else 1_048_576
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]
