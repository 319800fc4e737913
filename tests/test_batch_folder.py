"""The legacy shared folder (R-7.4.1.2, interfaces.md §7): complete files loaded into their folder's park only,
moved into done/ or failed/ beside their report; files still being written left alone."""

from __future__ import annotations

import os
import time

import pytest
from django.core.management import call_command

from apps.batch.folder import scan_folder
from apps.batch.models import FileLoad
from apps.ingestion.models import Reading
from tests import batch_files as bf


@pytest.fixture
def inbox(settings, tmp_path):
    settings.BATCH_REPORT_ROOT = tmp_path / "reports"
    settings.BATCH_FOLDER_ROOT = tmp_path / "inbox"
    settings.BATCH_FOLDER_SETTLE_SECONDS = 60
    return tmp_path / "inbox"


def drop(inbox, park_code, filename, data, *, category="CS", year="2026", month="11", age=120, marker=False):
    folder = inbox / park_code / category / year / month
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    past = time.time() - age
    os.utime(path, (past, past))
    if marker:
        (folder / (filename + ".done")).write_bytes(b"")
    return path


def test_a_complete_file_is_loaded_and_moved_to_done_beside_its_report(inbox, park, meter):
    rows = bf.readings(4) + ["TP01-EM-0001,CS010201,bad-time,1,kWh,N"]
    path = drop(inbox, "TP01", bf.name(), bf.csv_text(rows))
    results = scan_folder()
    assert len(results) == 1 and results[0].report.accepted == 4 and results[0].report.rejected == 1
    done = path.parent / "done" / path.name
    assert done.exists() and not path.exists()
    assert (path.parent / "done" / (path.name + ".rejections.csv")).exists()
    assert Reading.objects.filter(source=meter, channel="file").count() == 4
    load = FileLoad.objects.get()
    assert (load.origin, load.actor_label) == ("folder", "folder:TP01")
    assert scan_folder() == []  # done/ is not scanned again


def test_a_file_still_being_written_is_left_until_it_settles_or_its_marker_comes(inbox, park, meter):
    path = drop(inbox, "TP01", bf.name(), bf.csv_text(bf.readings(2)), age=0)
    assert scan_folder() == [] and path.exists()
    (path.parent / (path.name + ".done")).write_bytes(b"")
    assert len(scan_folder()) == 1
    assert not (path.parent / (path.name + ".done")).exists()
    part = drop(inbox, "TP01", bf.name(seq=2) + ".part", b"x", age=1000)
    assert scan_folder() == [] and part.exists()


def test_a_file_for_another_park_in_a_park_folder_is_failed_with_a_code(inbox, park, other_park, meter):
    path = drop(inbox, "TP01", bf.name(park="TP02"), bf.csv_text(bf.readings(2)))
    [result] = scan_folder()
    assert result.report.file_error.code == "E9102"
    assert (path.parent / "failed" / path.name).exists()
    assert (path.parent / "failed" / (path.name + ".rejections.csv")).exists()
    assert Reading.objects.count() == 0


def test_a_file_in_the_wrong_place_is_failed(inbox, park, meter):
    wrong = drop(inbox, "TP01", bf.name(), bf.csv_text(bf.readings(1)), month="10")
    flat = inbox / "TP01" / bf.name(seq=2)
    flat.write_text(bf.csv_text(bf.readings(1)))
    os.utime(flat, (time.time() - 300, time.time() - 300))
    results = {r.report.filename: r.report.file_error for r in scan_folder()}
    assert sorted(e.code for e in results.values()) == ["E9128", "E9128"]
    assert (wrong.parent / "failed" / wrong.name).exists()
    assert Reading.objects.count() == 0
    # what is wrong, in each language's own words
    misplaced = results[wrong.name]
    assert "目录 2026/10，时段 202611" in misplaced.message_zh and "folder" not in misplaced.message_zh
    assert "folder 2026/10, period 202611" in misplaced.message_en


def test_a_folder_of_no_park_is_left_alone(inbox, park, meter):
    path = drop(inbox, "NOPE", bf.name(park="NOPE"), bf.csv_text(bf.readings(1)))
    assert scan_folder() == [] and path.exists()


def test_the_command_scans_once(inbox, park, meter, capsys):
    drop(inbox, "TP01", bf.name(), bf.csv_text(bf.readings(3)), marker=True)
    call_command("scan_batch_folder", settle=0)
    out = capsys.readouterr().out
    assert "3 accepted" in out and "1 file(s)" in out
