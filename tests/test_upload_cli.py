"""``manage.py upload`` against the live server (issue #11 item 3, R-7.2.2), run as its own process like a user runs
it: the local check refuses a bad row (and a wrong name) before anything is sent; an upload cut off mid-way (a TCP
proxy between the client and the server drops every connection) resumes, on the next run, from the offset the
server reports, with the same upload; four parallel parts are joined by the concatenation extension and loaded
once. The load task runs in a real Celery worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from apps.accounts.services import issue_token
from apps.core.services import bump_config_version
from apps.uploads.models import Upload
from tests.batch_files import csv_text, name, readings
from tests.gunicorn_server import database_url_of_this_test
from tests.tcp_proxy import TcpProxy
from tests.upload_worker import upload_worker  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def key(meter):
    bump_config_version()
    return issue_token(actor="test", park=meter.park, name="cli")[1]


def cli(*args, url: str, key: str, state: Path, wait: bool = True, timeout: float = 180):
    """Run ``manage.py upload`` as a process; (exit status, stdout, stderr), or the Popen when not waiting."""
    env = dict(os.environ, DATABASE_URL=database_url_of_this_test(), PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "manage.py", "upload", *args, "--url", url, "--token", key, "--state", str(state)]
    if not wait:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    return done.returncode, done.stdout, done.stderr


def test_the_local_check_refuses_a_bad_row_and_a_bad_name_before_sending(live_server, key, tmp_path):
    bad = tmp_path / name(seq=1)
    bad.write_text(csv_text(readings(5) + ["TP01-EM-0001,CS010201,2026-11-09 00:00:00,1.5,kWh",
                                           "TP01-EM-0001,CS010201,2026-11-31 00:00:00,2.5,kWh,N"]))
    wrong = tmp_path / "十一月电量.csv"
    wrong.write_text(csv_text(readings(5)))
    state = tmp_path / "state.json"
    status, out, err = cli("--check-only", "--lang", "en", str(bad), str(wrong), url=live_server.url, key=key,
                           state=state)
    assert status == 1, (out, err)
    assert "2 of 7 rows have problems" in err and "row 7: E9151" in err and "row 8, timestamp: E2007" in err
    assert "E9101" in err and "does not follow" in err
    status, out, err = cli(str(bad), url=live_server.url, key=key, state=state)  # sending: refused the same
    assert status == 1 and "E9151" in err and "refused, not sent" in err, (out, err)
    assert not Upload.objects.exists()  # nothing reached the server
    good = tmp_path / name(seq=2)
    good.write_text(csv_text(readings(5)))
    status, out, err = cli("--check-only", str(good), url=live_server.url, key=key, state=state)
    assert status == 0 and "checked, 5 rows, no problem" in out and not Upload.objects.exists(), (out, err)


def test_an_interrupted_upload_resumes_from_the_servers_offset(live_server, key, upload_worker, tmp_path,  # noqa: F811
                                                                settings):
    settings.UPLOAD_LEASE_SECONDS = 2  # the PATCH cut off releases the upload soon
    data = csv_text(readings(24000)).encode()  # about 1.2 MB
    path = tmp_path / name(seq=3)
    path.write_bytes(data)
    state = tmp_path / "state.json"
    server = urlsplit(live_server.url)
    with TcpProxy(server.hostname, server.port) as proxy:
        url = f"http://127.0.0.1:{proxy.port}"
        run = cli("--chunk-size", "32768", "--retries", "0", str(path), url=url, key=key, state=state, wait=False)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not Upload.objects.filter(offset__gt=100_000).exists():
            time.sleep(0.01)
        proxy.cut()
        out, err = run.communicate(timeout=60)
        assert run.returncode == 2 and "interrupted" in err and "run the same command again" in err, (out, err)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and Upload.objects.filter(lease__isnull=False).exists():
            time.sleep(0.1)
        upload = Upload.objects.get()
        held = upload.offset
        assert upload.state == "receiving" and 100_000 <= held < len(data)
        assert str(upload.pk) in state.read_text()  # the URL kept under the file's fingerprint

        proxy.restore()
        status, out, err = cli("--chunk-size", "262144", str(path), url=url, key=key, state=state)
    assert status == 0, (out, err, upload_worker.read_text()[-2000:])
    assert f"resuming {url}/api/v1/uploads/{upload.pk} at byte {held} of {len(data)}" in err
    assert "loaded: 24000 rows, 24000 accepted, 0 duplicates, 0 rejected" in out
    assert Upload.objects.count() == 1
    upload.refresh_from_db()
    assert upload.state == "loaded" and upload.received_md5 == upload.md5 and upload.accepted == 24000
    assert str(upload.pk) not in state.read_text()  # forgotten once loaded


def test_four_parallel_parts_are_joined_and_loaded(live_server, key, upload_worker, tmp_path):  # noqa: F811
    rows = readings(3000, start_minute=30000) + ["TP01-EM-0002,CS010201,2026-11-20 00:00:00,1.5,kWh,N"]
    path = tmp_path / name(seq=4)
    path.write_text(csv_text(rows))
    state = tmp_path / "state.json"
    status, out, err = cli("--parts", "4", str(path), url=live_server.url, key=key,
                           state=state)
    assert status == 0, (out, err, upload_worker.read_text()[-2000:])
    assert "loaded: 3001 rows, 3000 accepted, 0 duplicates, 1 rejected" in out
    assert "rejection report (CSV): " + live_server.url + "/api/v1/uploads/" in out
    parts = Upload.objects.filter(concat="partial")
    final = Upload.objects.get(concat="final")
    assert parts.count() == 4 and final.parts == [p.pk for p in sorted(parts, key=lambda p: final.parts.index(p.pk))]
    assert sum(p.length for p in parts) == path.stat().st_size == final.length
    assert final.state == "loaded" and final.received_md5 == final.md5

    status, out, err = cli("--parts", "4", str(path), url=live_server.url, key=key,
                           state=state)  # the same file again: stored nothing twice
    assert status == 0 and "3000 duplicates" in out, (out, err)
