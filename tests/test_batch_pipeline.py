"""How load_file feeds the pipeline (issue #11 benchmark work): the file parsed one batch ahead in a thread
(apps/batch/prefetch.py), the sources' last seen written once per file after its commit, the rows, rejections and
refusals exactly as with one batch at a time."""

from __future__ import annotations

import threading
import time

import pytest

from apps.accounts.access import SystemPrincipal
from apps.batch import loading
from apps.batch.loading import load_file
from apps.batch.models import FileLoad
from apps.batch.prefetch import Prefetch
from apps.ingestion import services as ingest_services
from apps.ingestion.models import IngestBatch, Reading
from apps.sources.models import DeviceState
from tests import batch_files as bf
from tests.conftest import add_source

ROBOT = SystemPrincipal("test-batch")


@pytest.fixture(autouse=True)
def _reports(settings, tmp_path):
    settings.BATCH_REPORT_ROOT = tmp_path / "reports"


def load(tmp_path, park, filename, data, **kw):
    path = bf.write(tmp_path, filename, data)
    return load_file(path, park=park, actor=ROBOT, filename=filename, **kw)


# --- Prefetch -------------------------------------------------------------------------------------------------

def test_prefetch_yields_every_item_in_order():
    with Prefetch(iter(range(1000)), depth=2) as items:
        assert list(items) == list(range(1000))


def test_prefetch_raises_the_sources_error_after_the_items_before_it():
    class Boom(Exception):
        pass

    def source():
        yield from (1, 2, 3)
        raise Boom("at the end")

    got = []
    with pytest.raises(Boom, match="at the end"), Prefetch(source()) as items:
        for item in items:
            got.append(item)
    assert got == [1, 2, 3]


def test_prefetch_reads_at_most_depth_ahead_and_close_stops_the_thread_and_closes_the_source():
    pulled, closed = [], threading.Event()

    def source():
        try:
            for i in range(10_000):
                pulled.append(i)
                yield i
        finally:
            closed.set()

    p = Prefetch(source(), depth=1)
    with p as items:
        it = iter(items)
        assert next(it) == 0
        deadline = time.monotonic() + 5
        while len(pulled) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        # one taken, one queued, one held by the thread waiting for room: never the whole file in memory
        assert len(pulled) <= 3
    assert closed.is_set() and not p._thread.is_alive()


def test_the_switch_interval_is_short_while_any_prefetch_runs_and_restored_after_the_last():
    import sys

    from apps.batch import prefetch

    before = sys.getswitchinterval()
    a = Prefetch(iter(range(3)))
    b = Prefetch(iter(range(3)))
    with a:
        assert sys.getswitchinterval() == pytest.approx(prefetch.SWITCH_INTERVAL)
        with b:
            assert list(b) == [0, 1, 2]
        assert sys.getswitchinterval() == pytest.approx(prefetch.SWITCH_INTERVAL)  # a still runs
        assert list(a) == [0, 1, 2]
    assert sys.getswitchinterval() == before
    a.close()  # closing twice gives nothing back twice
    assert sys.getswitchinterval() == before


# --- load_file through the prefetch -------------------------------------------------------------------------

@pytest.mark.parametrize("batch_size", [1, 3, 20_000])
def test_rows_and_rejections_are_the_same_whatever_the_batch(tmp_path, park, meter, batch_size):
    rows = bf.readings(4) + [
        "TP01-EM-0001,CS010201,2026-11-05 00:00:00,abc,kWh,N",       # row 7: value not a number
        "TP01-EM-0001,CS010201,2026-11-05 00:01:00,1",                # row 8: ragged (a parser's row error)
        bf.readings(1)[0],                                            # row 9: the first reading again
    ] + bf.readings(3, start_minute=100)
    rep = load(tmp_path, park, bf.name(), bf.csv_text(rows, meta={"records": len(rows)}), batch_size=batch_size)
    assert rep.ok and (rep.rows, rep.accepted, rep.duplicates, rep.rejected) == (10, 7, 1, 2)
    assert {(r.row, r.column, r.code) for r in rep.rejections} == {(7, "value", "E2002"), (8, "", "E9151")}
    assert Reading.objects.filter(source=meter).count() == 7
    assert sorted(Reading.objects.values_list("value", flat=True)) == [0.5, 1.5, 2.5, 3.5, 100.5, 101.5, 102.5]


def test_a_parser_error_after_batches_were_stored_refuses_the_whole_file(tmp_path, park, meter, monkeypatch):
    calls = []
    real = loading.ingest_readings

    def counting(**kwargs):
        calls.append(len(kwargs["prepared"].records))
        return real(**kwargs)

    monkeypatch.setattr(loading, "ingest_readings", counting)
    rows = bf.readings(40) + ['TP01-EM-0001,CS010201,2026-11-09 00:00:00,"' + "1" * 140_000 + '",kWh,N']
    rep = load(tmp_path, park, bf.name(), bf.csv_text(rows), batch_size=5)
    assert rep.file_error is not None and rep.file_error.code == "E9123"  # the csv module's field limit
    assert sum(calls) == 40  # eight batches went through ingest_readings before the parser failed
    assert Reading.objects.count() == 0 and IngestBatch.objects.count() == 0
    assert FileLoad.objects.get(pk=rep.load_id).state == "failed"


# --- batches checked ahead (prepare_readings in the prefetch thread) -----------------------------------------

def _record(source, minute=0):
    return {"sourceId": source, "dataCode": "CS010201", "timestamp": f"2026-11-01 00:{minute:02d}:00", "value": 1}


def test_a_batch_checked_ahead_is_checked_again_when_the_configuration_changed_before_it_is_stored(park, meter):
    from apps.ingestion.config import current_config
    from apps.ingestion.services import ingest_readings, prepare_readings

    ahead = prepare_readings([_record("TP01-EM-0001"), _record("TP01-EM-0002")], current_config(), parks=[park.pk])
    assert [p.error.code for p in ahead.rejected] == ["E2003"]  # no such source yet
    add_source(park, "TP01-EM-0002", ["CS010201"])  # the configuration changes before the batch is stored
    result = ingest_readings(channel="file", actor="t", prepared=ahead)
    assert (result.accepted, result.rejected) == (2, [])
    assert Reading.objects.filter(source__source_id="TP01-EM-0002").count() == 1
    # and the other way round: a batch valid when checked, its source disabled before it is stored
    ahead = prepare_readings([_record("TP01-EM-0002", minute=1)], current_config(), parks=[park.pk])
    assert ahead.rejected == []
    from apps.sources.models import DataSource
    from apps.sources.services import save_source

    save_source(actor="test", source=DataSource.objects.get(source_id="TP01-EM-0002"), enabled=False)
    result = ingest_readings(channel="file", actor="t", prepared=ahead)
    assert result.accepted == 0 and [r["code"] for r in result.rejected] == ["E2012"]


def test_a_file_whose_sources_change_mid_load_is_checked_against_the_configuration_of_each_store(
        tmp_path, park, meter, monkeypatch):
    real = loading.ingest_readings
    calls = []

    def adding_a_source_after_the_first_batch(**kwargs):
        result = real(**kwargs)
        calls.append(kwargs["prepared"].cfg.version)
        if len(calls) == 1:  # the next batches were (very likely) checked already, in the prefetch thread
            time.sleep(0.2)
            add_source(park, "TP01-EM-0002", ["CS010201"])
        return result

    monkeypatch.setattr(loading, "ingest_readings", adding_a_source_after_the_first_batch)
    rows = bf.readings(4) + bf.readings(8, source="TP01-EM-0002")
    rep = load(tmp_path, park, bf.name(), bf.csv_text(rows), batch_size=4)  # three batches
    assert rep.ok and (rep.rows, rep.accepted, rep.rejected) == (12, 12, 0)
    assert Reading.objects.filter(source__source_id="TP01-EM-0002").count() == 8


# --- last seen ----------------------------------------------------------------------------------------------

def test_last_seen_is_written_once_per_file_at_each_sources_latest_batch(tmp_path, park, meter, monkeypatch):
    other = add_source(park, "TP01-EM-0002", ["CS010201"])
    writes = []
    real = ingest_services.touch

    def counting(marks, at=None):
        writes.append(dict(marks))
        return real(marks, at)

    monkeypatch.setattr(ingest_services, "touch", counting)
    rows = bf.readings(6) + bf.readings(6, source="TP01-EM-0002")
    rep = load(tmp_path, park, bf.name(), bf.csv_text(rows), batch_size=4)  # three batches
    assert rep.ok and rep.accepted == 12
    assert len(writes) == 1 and set(writes[0]) == {meter.pk, other.pk}
    batches = list(IngestBatch.objects.order_by("id"))
    assert len(batches) == 3
    # each source at the time of the last batch that brought it: meter in batches 1-2, the other in 2-3
    assert writes[0][meter.pk] == batches[1].received_at and writes[0][other.pk] == batches[2].received_at
    seen = dict(DeviceState.objects.values_list("source_id", "last_seen_at"))
    assert seen == {meter.pk: batches[1].received_at, other.pk: batches[2].received_at}


def test_a_refused_file_sets_no_last_seen(tmp_path, park, meter):
    rep = load(tmp_path, park, bf.name(), bf.csv_text(bf.readings(20), meta={"records": 21}), batch_size=5)
    assert rep.file_error.code == "E9107"
    assert not DeviceState.objects.filter(source=meter, last_seen_at__isnull=False).exists()


def test_outside_a_file_each_batch_still_writes_last_seen_at_once(park, meter, monkeypatch):
    from apps.ingestion.services import ingest_readings

    writes = []
    real = ingest_services.touch
    monkeypatch.setattr(ingest_services, "touch", lambda marks, at=None: (writes.append(dict(marks)),
                                                                          real(marks, at)))
    for minute in (0, 1):
        ingest_readings([{"sourceId": "TP01-EM-0001", "timestamp": f"2026-11-01 00:0{minute}:00", "value": 1}],
                        channel="http", actor="t", parks=[park.pk])
    assert len(writes) == 2 and all(set(w) == {meter.pk} for w in writes)
    assert DeviceState.objects.get(source=meter).last_seen_at is not None
