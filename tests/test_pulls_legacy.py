"""The legacy-database connector (issue #13 item 6, R-7.4.1.2) against real servers: the machine's MariaDB (a
database of our own, made and dropped here) and PostgreSQL (a scratch database beside the test database). Rows
with NULLs and wrong types are rejected with their codes, the rest stored, the watermark advanced past both;
a second run stores nothing twice; the session is read-only; a table name that is not a plain identifier is
refused before anything connects."""

from __future__ import annotations

import secrets
import socket
from datetime import datetime

import psycopg
import pymysql
import pytest
from django.db import connection

from apps.core.errors import CarbonParkError
from apps.ingestion.models import IngestBatch, Reading, Rejection
from apps.pulls import legacy
from apps.pulls.models import Connector
from apps.pulls.services import run_connector, save_connector

MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
MAPPING = {"sourceId": "meter", "dataCode": "=CS010201", "timestamp": "ts", "value": "val", "unit": "unit"}


def _mariadb_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 3306), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def mariadb():
    """A database of this test's own on the machine's MariaDB, dropped afterwards."""
    if not _mariadb_up():
        pytest.skip("no MariaDB on 127.0.0.1:3306")
    name = f"cp_pulls_test_{secrets.token_hex(4)}"
    admin = pymysql.connect(**MARIADB, autocommit=True)
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    db = pymysql.connect(**MARIADB, database=name, autocommit=True)
    try:
        yield name, db
    finally:
        db.close()
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@pytest.fixture
def pg_scratch(db):
    """A scratch PostgreSQL database beside the test database (none of its tables), dropped afterwards."""
    s = connection.settings_dict
    params = {"host": s["HOST"], "port": s["PORT"] or 5432, "user": s["USER"], "password": s["PASSWORD"] or None}
    name = f"cp_pulls_legacy_{secrets.token_hex(4)}"
    admin = psycopg.connect(**params, dbname="postgres", autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    conn = psycopg.connect(**params, dbname=name, autocommit=True)
    try:
        yield {**params, "database": name}, conn
    finally:
        conn.close()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def db_connector(park, **cfg):
    mapping = cfg.pop("mapping", MAPPING)
    settings = {"engine": "mysql", "host": "127.0.0.1", "port": 3306, "user": "root", "table": "meter_log",
                "watermark": "id", "batch_size": 3, **cfg}
    password = settings.pop("password", "")
    return save_connector(actor="test", park=park, name=f"legacy {Connector.objects.count()}", kind="database",
                          settings=settings, mapping=mapping, secret=password)


def test_mariadb_table_with_nulls_and_wrong_types(park, meter, mariadb):
    name, db = mariadb
    with db.cursor() as cur:
        cur.execute("CREATE TABLE meter_log (id INT AUTO_INCREMENT PRIMARY KEY, meter VARCHAR(64), "
                    "ts DATETIME(3) NULL, val VARCHAR(40) NULL, unit VARCHAR(16))")
        cur.executemany("INSERT INTO meter_log (meter, ts, val, unit) VALUES (%s, %s, %s, %s)", [
            ("TP01-EM-0001", "2026-11-23 10:00:00", "1.5", "kWh"),
            ("TP01-EM-0001", None, "2.5", "kWh"),  # NULL timestamp
            ("TP01-EM-0001", "2026-11-23 10:10:00", "abc", "kWh"),  # text in the value column
            ("TP01-EM-0001", "2026-11-23 10:15:00", None, "kWh"),  # NULL value
            ("TP01-EM-0001", "2026-11-23 10:20:00", "4.25", "MWh"),
            ("TP01-EM-0001", "2026-11-23 10:25:00", "5", "kWh"),
            ("TP01-EM-0001", "2026-11-23 10:30:00", "6", "kWh"),
        ])
    # the value column is text in this legacy table: numbers written as text are read as numbers, "abc" stays text
    c = db_connector(park, database=name, value_text_numbers=True)
    run = run_connector(c.pk)
    assert (run.state, run.pulled, run.accepted, run.rejected) == ("done", 7, 4, 3), run.error_params
    assert run.pages == 3  # batches of 3
    c.refresh_from_db()
    assert c.cursor == {"watermark": 7}
    codes = sorted(Rejection.objects.values_list("code", "field"))
    assert codes == [("E2001", "timestamp"), ("E2001", "value"), ("E2002", "value")]
    values = sorted(Reading.objects.filter(source=meter, channel="poller").values_list("value", flat=True))
    assert values == [1.5, 5.0, 6.0, 4250.0]  # MWh converted, the rest as read
    assert set(IngestBatch.objects.filter(channel="poller").values_list("actor_label", flat=True)) == {
        f"pull:database:{c.pk}"}
    # again: nothing new, nothing stored or rejected twice
    again = run_connector(c.pk)
    assert (again.state, again.pulled, again.accepted) == ("done", 0, 0)
    assert Rejection.objects.count() == 3 and Reading.objects.count() == 4
    with db.cursor() as cur:
        cur.execute("INSERT INTO meter_log (meter, ts, val, unit) VALUES ('TP01-EM-0001', '2026-11-23 10:35:00', "
                    "'7', 'kWh')")
    later = run_connector(c.pk)
    assert (later.pulled, later.accepted) == (1, 1) and Connector.objects.get(pk=c.pk).cursor == {"watermark": 8}


def test_mariadb_session_is_read_only(park, mariadb):
    name, db = mariadb
    with db.cursor() as cur:
        cur.execute("CREATE TABLE meter_log (id INT PRIMARY KEY, meter VARCHAR(64), ts DATETIME, val DOUBLE, "
                    "unit VARCHAR(8))")
    cfg = legacy.check_settings({"engine": "mysql", "host": "127.0.0.1", "user": "root", "database": name,
                                 "table": "meter_log", "watermark": "id"}, MAPPING)
    puller = legacy.DatabasePuller(cfg, MAPPING, "")
    puller.connect()
    try:
        with pytest.raises(CarbonParkError) as exc:
            puller._query("INSERT INTO meter_log (id, meter) VALUES (1, 'x')", [])
        assert exc.value.error.code == "E7507" and "read" in str(exc.value).lower()
    finally:
        puller.close()
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM meter_log")
        assert cur.fetchone()[0] == 0


def test_postgresql_timestamp_watermark_with_ties_across_batches(park, meter, pg_scratch):
    params, conn = pg_scratch
    conn.execute("CREATE SCHEMA legacy")
    conn.execute("CREATE TABLE legacy.energy (meter text, code text, at timestamptz, kwh numeric, unit text)")
    rows = [("TP01-EM-0001", "CS010201", f"2026-11-23 02:{m:02d}:00+00", n + 1.0, "kWh")
            for n, m in enumerate([0, 5, 5, 5, 10, 15, 15])]
    rows.append(("TP01-EM-0001", "CS010201", "2026-11-23 02:20:00+00", "NaN", "kWh"))  # a NaN in numeric
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO legacy.energy VALUES (%s, %s, %s, %s, %s)", rows)
    mapping = {"sourceId": "meter", "dataCode": "code", "timestamp": "at", "value": "kwh", "unit": "unit"}
    c = db_connector(park, engine="postgresql", host=params["host"], port=int(params["port"]), user=params["user"],
                     password=params["password"] or "", database=params["database"], table="legacy.energy",
                     watermark="at", watermark_kind="timestamp", batch_size=2, mapping=mapping)
    run = run_connector(c.pk)
    # the minute 05 rows share a watermark: one batch takes all three; the two at 02:05 and 02:15 rows are
    # distinct readings only by value, so the pipeline keeps the first (same identity) and counts repeats
    assert run.state == "done", run.error_params
    assert run.pulled == 8 and run.accepted == 4 and run.duplicates == 3 and run.rejected == 1
    assert Rejection.objects.get().code == "E2008"
    c.refresh_from_db()
    assert datetime.fromisoformat(c.cursor["watermark"]) == datetime.fromisoformat("2026-11-23T02:20:00+00:00")
    again = run_connector(c.pk)
    assert (again.pulled, again.accepted, again.rejected) == (0, 0, 0)
    from datetime import UTC

    full = run_connector(c.pk, mode="full", window=(datetime(2026, 11, 23, 2, 10, tzinfo=UTC), None))
    assert (full.state, full.pulled, full.accepted, full.duplicates) == ("done", 4, 0, 3)  # 02:10 included
    assert Connector.objects.get(pk=c.pk).cursor == c.cursor  # a full pull leaves the watermark
    # read-only: the connector's session cannot write even by mistake
    cfg = legacy.check_settings(c.settings, mapping)
    puller = legacy.DatabasePuller(cfg, mapping, params["password"] or "")
    puller.connect()
    try:
        with pytest.raises(CarbonParkError) as exc:
            puller._query("DELETE FROM legacy.energy", [])
        assert "read-only" in str(exc.value)
    finally:
        puller.close()
    assert conn.execute("SELECT count(*) FROM legacy.energy").fetchone()[0] == 8


@pytest.mark.parametrize("table", ["meter_log; DROP TABLE meter_log", 'meter_log" --', "a.b.c", "meter log",
                                   "meter_log/*x*/", "", "t\x00", "`meter_log`", "1table"])
def test_a_table_name_that_is_not_a_plain_identifier_is_refused(park, table):
    with pytest.raises(CarbonParkError) as exc:
        db_connector(park, database="x", table=table)
    assert exc.value.error.code == "E7502"
    assert not Connector.objects.exists()


def test_columns_and_watermark_are_plain_identifiers_too(park):
    for cfg in ({"watermark": "id; --"}, {"mapping": {**MAPPING, "value": "val) OR 1=1 --"}}):
        with pytest.raises(CarbonParkError) as exc:
            db_connector(park, database="x", **cfg)
        assert exc.value.error.code == "E7502"


def test_an_unreachable_database_fails_with_its_code(park, meter):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for engine in ("mysql", "postgresql", "sqlserver"):
        c = db_connector(park, engine=engine, port=port, database="x", connect_timeout=2)
        run = run_connector(c.pk)
        assert (run.state, run.error_code) == ("failed", "E7503"), (engine, run.error_params)
        assert str(port) in run.error_params["target"]
    assert not Reading.objects.exists()


def test_a_missing_table_or_column_fails_the_run_without_moving_the_watermark(park, mariadb):
    name, db = mariadb
    with db.cursor() as cur:
        cur.execute("CREATE TABLE meter_log (id INT PRIMARY KEY, meter VARCHAR(64), ts DATETIME, val DOUBLE, "
                    "unit VARCHAR(8))")
    c = db_connector(park, database=name, table="no_such_table")
    run = run_connector(c.pk)
    assert (run.state, run.error_code) == ("failed", "E7507")
    c2 = db_connector(park, database=name, mapping={**MAPPING, "value": "no_such_column"})
    assert run_connector(c2.pk).error_code == "E7507"
    assert Connector.objects.get(pk=c2.pk).cursor is None


def test_the_sql_of_each_dialect_quotes_identifiers_and_binds_values():
    mapping = {"sourceId": "meter", "timestamp": "ts", "value": "val"}
    for engine, quote in (("postgresql", '"meter"'), ("mysql", "`meter`"), ("sqlserver", "[meter]")):
        cfg = legacy.check_settings({"engine": engine, "host": "h", "user": "u", "database": "d",
                                     "table": "dbo.log", "watermark": "id"}, mapping)
        sql = legacy.DatabasePuller(cfg, mapping, "").select_sql(after=True, limit=True)
        assert quote in sql and "%s" in sql
        assert sql.startswith("SELECT TOP (%s)") == (engine == "sqlserver")
