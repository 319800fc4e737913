"""A loader killed mid-file leaves nothing half-loaded (issue #11 item 5, interfaces.md §7): the file's one
transaction dies with the process; its log row is closed as interrupted (E9126); loading the file again stores
every reading once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from apps.batch.loading import load_file, recover_interrupted_loads
from apps.batch.models import FileLoad
from apps.ingestion.models import IngestBatch, Reading
from tests import batch_files as bf

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

CHILD = """
import os, sys, time, django
django.setup()
from apps.accounts.access import SystemPrincipal
from apps.accounts.models import Park
from apps.batch.loading import load_file

marker = sys.argv[3]
calls = []

def progress(report):
    calls.append(report.rows)
    if len(calls) == 2:  # two batches ingested inside the file's transaction: the parent kills us now
        with open(marker, "w") as fh:
            fh.write(str(report.rows))
        time.sleep(120)

load_file(sys.argv[1], park=Park.objects.get(code="TP01"), actor=SystemPrincipal("crash-test"),
          filename=sys.argv[2], progress=progress, batch_size=500)
"""


def test_a_loader_killed_mid_file_leaves_nothing_and_a_reload_stores_everything_once(park, meter, tmp_path,
                                                                                      settings):
    from tests.test_mqtt_channel import _database_url_of_this_test

    settings.BATCH_REPORT_ROOT = tmp_path / "reports"
    name = bf.name()
    path = bf.write(tmp_path, name, bf.csv_text(bf.readings(3000), meta={"records": 3000}))
    marker = tmp_path / "mid-file"
    env = dict(os.environ, DATABASE_URL=_database_url_of_this_test(), DJANGO_SETTINGS_MODULE="carbonpark.settings",
               BATCH_REPORT_ROOT=str(tmp_path / "reports"))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), name, str(marker)], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), child.stdout.read().decode()[-3000:] if child.poll() is not None else "no marker"
        assert marker.read_text() == "1000"  # two batches of 500 were ingested, uncommitted
        assert FileLoad.objects.get().state == "running"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
    # The server ends the dead client's transaction; wait until its backend is gone, then count.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and recover_interrupted_loads(grace_seconds=0) == 0:
        time.sleep(0.2)
    assert Reading.objects.count() == 0 and IngestBatch.objects.filter(channel="file").count() == 0
    load = FileLoad.objects.get()
    assert (load.state, load.error_code) == ("failed", "E9126")

    from apps.accounts.access import SystemPrincipal

    report = load_file(path, park=park, actor=SystemPrincipal("retry"), filename=name, batch_size=500)
    assert report.ok and (report.accepted, report.duplicates) == (3000, 0)
    again = load_file(path, park=park, actor=SystemPrincipal("retry"), filename=name, batch_size=500)
    assert (again.accepted, again.duplicates) == (0, 3000)
    assert Reading.objects.filter(source=meter).count() == 3000
