"""The legacy-database connector (R-7.4.1.2: direct database access through standard drivers): a configured table
or view of a PostgreSQL (psycopg), MySQL/MariaDB (PyMySQL) or SQL Server (pymssql) system, read in a read-only
session, in batches ordered by a watermark column (a timestamp or an increasing id), each row mapped to a reading
record by the connector's column mapping.

Nothing of the configuration reaches SQL as text but plain identifiers checked against ``IDENT`` and then
quoted for the engine; every value (the watermark, the batch size) is a bound parameter."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from apps.core.errors import CarbonParkError
from apps.pulls import errors
from apps.pulls.mapping import MappingError, compile_mapping

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
ENGINES = {"postgresql": ("psycopg", 5432), "mysql": ("pymysql", 3306), "sqlserver": ("pymssql", 1433)}
DEFAULTS = {"engine": "postgresql", "host": "", "port": None, "database": "", "user": "", "table": "",
            "watermark": "", "watermark_kind": "id", "batch_size": 1000, "max_batches": 20, "connect_timeout": 10,
            "read_timeout": 60, "value_text_numbers": False}
QUOTES = {"postgresql": '"{}"', "mysql": "`{}`", "sqlserver": "[{}]"}
NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")
TIE_LIMIT = 100_000  # rows sharing one watermark value read together at a batch's end, at most


def _bad(detail: str):
    return CarbonParkError(errors.E7501, detail=detail[:300])


def identifier(name, *, dotted: bool = False) -> tuple[str, ...]:
    """A plain identifier (``schema.table`` when ``dotted``), or E7502: the only way configuration text reaches
    SQL, so an injection (``t; DROP TABLE x``, ``t" --``) is refused before any connection is made."""
    if not isinstance(name, str):
        raise CarbonParkError(errors.E7502, name=repr(name)[:80])
    parts = name.split(".") if dotted else [name]
    if len(parts) > 2 or not all(IDENT.fullmatch(p) for p in parts):
        raise CarbonParkError(errors.E7502, name=name[:80])
    return tuple(parts)


def check_settings(settings: dict, mapping: dict) -> dict:
    if not isinstance(settings, dict):
        raise _bad("settings must be a JSON object")
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise _bad(f"unknown settings {unknown}")
    cfg = {**DEFAULTS, **settings}
    if cfg["engine"] not in ENGINES:
        raise _bad(f"engine is one of {sorted(ENGINES)}")
    for key in ("host", "database", "user"):
        if not isinstance(cfg[key], str) or not cfg[key] or "\x00" in cfg[key] or len(cfg[key]) > 200:
            raise _bad(f"{key} is required")
    if cfg["port"] is None:
        cfg["port"] = ENGINES[cfg["engine"]][1]
    if not isinstance(cfg["port"], int) or isinstance(cfg["port"], bool) or not 0 < cfg["port"] < 65536:
        raise _bad("port is 1–65535")
    identifier(cfg["table"], dotted=True)
    identifier(cfg["watermark"])
    if not isinstance(cfg["value_text_numbers"], bool):
        raise _bad("value_text_numbers is true or false")
    if cfg["watermark_kind"] not in ("id", "timestamp"):
        raise _bad("watermark_kind is id or timestamp")
    for key, low, high in (("batch_size", 1, 10000), ("max_batches", 1, 1000), ("connect_timeout", 1, 30),
                           ("read_timeout", 1, 60)):
        if not isinstance(cfg[key], int) or isinstance(cfg[key], bool) or not low <= cfg[key] <= high:
            raise _bad(f"{key} must be an integer from {low} to {high}")
    try:
        specs = compile_mapping(mapping, columns=True)
    except MappingError as exc:
        raise _bad(str(exc)) from None
    for spec in specs.values():
        if spec.path:
            identifier(spec.path[0])
    return cfg


@dataclass
class Batch:
    records: list[dict]
    cursor: dict  # {"watermark": ...} once this batch is stored


def _json_value(value):
    """A column's value as a record field: numbers as numbers (a NaN or infinite one too, refused by the pipeline
    with its code), bytes as text, dates as text."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, datetime):
        if value.tzinfo is None:  # the legacy system's clock: the park's zone, as interfaces.md §1 reads it
            return value.isoformat(sep=" ", timespec="milliseconds")
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _wm_json(value, kind: str):
    if value is None:
        return None
    if kind == "timestamp":
        if not isinstance(value, datetime):
            raise CarbonParkError(errors.E7507, detail="the watermark column holds no timestamps")
        return value.isoformat()
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise CarbonParkError(errors.E7507, detail="the watermark column holds no integers")
    return int(value)


def _wm_param(saved, kind: str):
    if saved is None:
        return None
    return datetime.fromisoformat(saved) if kind == "timestamp" else int(saved)


class DatabasePuller:
    def __init__(self, cfg: dict, mapping: dict, password: str):
        self.cfg = cfg
        self.specs = compile_mapping(mapping, columns=True)
        self.password = password
        self.engine = cfg["engine"]
        self.conn = None

    def q(self, name: str) -> str:
        return QUOTES[self.engine].format(name)

    def table_sql(self) -> str:
        return ".".join(self.q(p) for p in identifier(self.cfg["table"], dotted=True))

    def columns(self) -> list[str]:
        cols = [identifier(self.cfg["watermark"])[0]]
        for spec in self.specs.values():
            if spec.path and spec.path[0] not in cols:
                cols.append(identifier(spec.path[0])[0])
        return cols

    def select_sql(self, *, after: bool, limit: bool, equal: bool = False) -> str:
        """The batch query: the mapped columns, rows past the watermark (or at it, for a tie), in its order."""
        cols = ", ".join(self.q(c) for c in self.columns())
        wm = self.q(self.cfg["watermark"])
        where = f"{wm} = %s" if equal else (f"{wm} > %s" if after else f"{wm} IS NOT NULL")
        top = "TOP (%s) " if limit and self.engine == "sqlserver" else ""
        tail = " LIMIT %s" if limit and self.engine != "sqlserver" else ""
        return f"SELECT {top}{cols} FROM {self.table_sql()} WHERE {where} ORDER BY {wm}{tail}"

    # --- connections ---------------------------------------------------------------------------------

    def connect(self):
        cfg = self.cfg
        module = ENGINES[self.engine][0]
        target = f"{cfg['host']}:{cfg['port']}/{cfg['database']}"
        try:
            if self.engine == "postgresql":
                import psycopg

                self.conn = psycopg.connect(
                    host=cfg["host"], port=cfg["port"], dbname=cfg["database"], user=cfg["user"],
                    password=self.password or None, connect_timeout=cfg["connect_timeout"],
                    options=f"-c statement_timeout={cfg['read_timeout'] * 1000} -c default_transaction_read_only=on",
                    application_name="carbonpark-pull")
                self.conn.read_only = True
            elif self.engine == "mysql":
                import pymysql

                self.conn = pymysql.connect(
                    host=cfg["host"], port=cfg["port"], database=cfg["database"], user=cfg["user"],
                    password=self.password or "", connect_timeout=cfg["connect_timeout"],
                    read_timeout=cfg["read_timeout"], write_timeout=cfg["read_timeout"], charset="utf8mb4",
                    autocommit=True)
                with self.conn.cursor() as cur:
                    cur.execute("SET SESSION TRANSACTION READ ONLY")
            else:
                import pymssql

                self.conn = pymssql.connect(
                    server=cfg["host"], port=str(cfg["port"]), database=cfg["database"], user=cfg["user"],
                    password=self.password or "", login_timeout=cfg["connect_timeout"], timeout=cfg["read_timeout"],
                    appname="carbonpark-pull", autocommit=False)
        except ImportError:
            raise CarbonParkError(errors.E7511, engine=self.engine, module=module) from None
        except Exception as exc:  # noqa: BLE001 - each driver has its own error classes; all mean "not connected"
            raise CarbonParkError(errors.E7503, target=target, detail=_short(exc)) from None

    def close(self):
        if self.conn is not None:
            with contextlib.suppress(Exception):  # closing a connection that already failed
                self.conn.close()
            self.conn = None

    def _query(self, sql: str, params: list) -> list[tuple]:
        try:
            with self.conn.cursor() as cur:
                if self.engine == "mysql":
                    cur.execute("START TRANSACTION READ ONLY")
                cur.execute(sql, params)
                rows = cur.fetchall()
            if self.engine != "mysql":
                self.conn.rollback()  # a read-only transaction: nothing to keep, locks released
            else:
                self.conn.commit()
            return rows
        except CarbonParkError:
            raise
        except Exception as exc:  # noqa: BLE001 - the driver's error: a missing table or column, a time-out
            raise CarbonParkError(errors.E7507, detail=_short(exc)) from None

    def batches(self, cursor: dict | None) -> Iterator[Batch]:
        """Batches past the saved watermark, each with the watermark to save once it is stored. A batch that
        ends inside a run of equal watermark values takes the whole run, so the next one starts past it and no
        row is skipped or read twice."""
        cfg = self.cfg
        kind = cfg["watermark_kind"]
        saved = (cursor or {}).get("watermark")
        size = cfg["batch_size"]
        cols = self.columns()
        if self.conn is None:
            self.connect()
        for _n in range(cfg["max_batches"]):
            wm = _wm_param(saved, kind)
            sql = self.select_sql(after=wm is not None, limit=True)
            params = ([size, wm] if self.engine == "sqlserver" else [wm, size]) if wm is not None else [size]
            rows = self._query(sql, params)
            if not rows:
                return
            if len(rows) == size:
                last = rows[-1][0]
                if rows[0][0] == last:
                    ties = self._query(self.select_sql(after=False, limit=False, equal=True), [last])
                    if len(ties) > TIE_LIMIT:
                        raise CarbonParkError(errors.E7507, detail=f"more than {TIE_LIMIT} rows share one watermark")
                    rows = ties
                else:
                    kept = [r for r in rows if r[0] != last]
                    ties = self._query(self.select_sql(after=False, limit=False, equal=True), [last])
                    rows = kept + list(ties)
            records = [self._record(dict(zip(cols, row, strict=True))) for row in rows]
            saved = _wm_json(rows[-1][0], kind)
            yield Batch(records, {"watermark": saved})
            if len(rows) < size:
                return

    def _record(self, row: dict) -> dict:
        record = {}
        for name, spec in self.specs.items():
            value = spec.const if spec.path == () else row.get(spec.path[0])
            if value is None:
                continue  # a NULL is a missing field: the pipeline refuses the record with its code
            value = _json_value(value)
            if name == "value" and self.cfg["value_text_numbers"] and isinstance(value, str) \
                    and NUMBER.fullmatch(value.strip()):
                value = float(value)  # a legacy system that keeps numbers in a text column
            record[name] = value
        return record


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:200]
