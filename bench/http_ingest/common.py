"""Constants shared by the benchmark's modules, and its two output helpers."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

HTTP_TARGET = 50_000
RATIO_TARGET = 0.6
PARK_CODE = "BP01"
ITEM_CODE = "CS010201"
PARK_TZ = "Asia/Shanghai"
BENCH_DB = "carbonpark_bench"
URL_PATH = "/api/v1/readings"
# Readings start here, one minute apart per source: always in the past (the default rule library
# refuses timestamps more than 5 minutes ahead).
TS_BASE = datetime(2020, 1, 1, tzinfo=UTC)

STAGE_COLUMNS = ("park_id", "source_id", "data_item_id", "ts", "value", "text_value", "received_value",
                 "received_unit", "status", "flags", "channel", "batch_id", "received_at")
STAGE_TYPES = ("int8", "int8", "int8", "timestamptz", "float8", "text", "float8", "text", "text", "int2",
               "text", "int8", "timestamptz")
STAGE_DDL = ("CREATE TEMP TABLE reading_stage (" +
             ", ".join(f"{c} {t}" for c, t in zip(STAGE_COLUMNS, STAGE_TYPES)) + ") ON COMMIT DELETE ROWS")
RAW_INSERT = (f"INSERT INTO ingestion_reading ({', '.join(STAGE_COLUMNS)}) "
              f"SELECT {', '.join(STAGE_COLUMNS)} FROM reading_stage ORDER BY source_id, data_item_id, ts "
              "ON CONFLICT (source_id, data_item_id, ts) DO NOTHING")
INGEST_TABLES = ("ingestion_reading", "ingestion_ingestbatch", "ingestion_validationevent",
                 "ingestion_rejection", "ingestion_idempotencykey")


def say(msg: str = "") -> None:
    print(msg, flush=True)


def fmt(n: float) -> str:
    return f"{n:,.0f}"
