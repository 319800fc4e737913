"""The tus server over real connections (issue #11 item 1): a real tus client (tuspy) creating, resuming after an
interruption and sending parallel parts that are concatenated; a body cut short keeping what arrived; two PATCHes at
one offset never interleaving; two finals of the same parts loading once (counted on the real broker); and, under
the production server (gunicorn with carbonpark/gunicorn.conf.py), a large chunk streamed to disk with the worker's
peak memory staying flat."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings
from tusclient import client as tus_client

from apps.accounts.services import issue_token
from apps.uploads.models import Upload
from tests.gunicorn_server import Gunicorn, database_url_of_this_test

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
NAME = "TP01_CS_202611_20261201083000_{seq:03d}.csv"


@pytest.fixture
def key(park):
    return issue_token(actor="test", park=park, name="uploader")[1]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def queue(monkeypatch):
    """A Celery queue of this test's own on the real broker: ``queue()`` is how many loads wait in it."""
    import redis

    from carbonpark.celery import app

    name = f"test-uploads-live-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    monkeypatch.setitem(app.conf, "task_default_queue", name)
    broker = redis.Redis.from_url(settings.REDIS_URL)
    yield lambda: broker.llen(name)
    broker.delete(name)


def payload(n: int, seed: int = 0) -> bytes:
    row = f"TP01-EM-0001,CS010201,2026-11-01 00:00:00,{seed}.5,kWh,N\n".encode()
    return (row * (n // len(row) + 1))[:n]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("the condition was not met in time")


def raw_patch_head(host: str, port: int, path: str, key: str, offset: int, length: int) -> bytes:
    return (f"PATCH {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Token {key}\r\n"
            f"Tus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def tus_create(base: str, key: str, length: int, **metadata) -> str:
    r = requests.post(f"{base}/api/v1/uploads/", headers={
        "Authorization": f"Token {key}", "Tus-Resumable": "1.0.0", "Upload-Length": str(length),
        "Upload-Metadata": ",".join(f"{k} {b64(v)}" for k, v in metadata.items())}, timeout=30)
    assert r.status_code == 201, r.content
    return r.headers["Location"]


def test_tuspy_creates_and_resumes_after_a_body_cut_short(live_server, key, queue, tmp_path):
    data = payload(300_000)
    source = tmp_path / "file.csv"
    source.write_bytes(data)
    base = live_server.url
    host, port = urlsplit(base).hostname, urlsplit(base).port
    path = tus_create(base, key, len(data), filename=NAME.format(seq=1), md5=hashlib.md5(data).hexdigest())
    assert path.startswith("/api/v1/uploads/")  # relative: resolved against the URL the client posted to

    # The connection drops after 100 000 of the 300 000 bytes announced: what arrived is kept, no more.
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(raw_patch_head(host, port, path, key, 0, len(data)) + data[:100_000])
        sock.shutdown(socket.SHUT_WR)
        sock.recv(1024)
    upload = wait_for(lambda: Upload.objects.filter(offset__gt=0, lease__isnull=True).first())
    assert upload.offset == 100_000 and upload.state == "receiving"
    assert upload.path.read_bytes() == data[:100_000]

    client = tus_client.TusClient(f"{base}/api/v1/uploads/", headers={"Authorization": f"Token {key}"})
    uploader = client.uploader(str(source), url=f"{base}{path}", chunk_size=64 * 1024, upload_checksum=True)
    assert uploader.offset == 100_000  # HEAD told it where the platform stands (R-8.4.2.2 c)
    uploader.upload()
    upload.refresh_from_db()
    assert upload.state == "received" and upload.path.read_bytes() == data
    assert upload.received_md5 == hashlib.md5(data).hexdigest()
    assert queue() == 1


def test_tuspy_whole_file_in_one_go(live_server, key, queue, tmp_path):
    data = payload(50_000, seed=7)
    source = tmp_path / NAME.format(seq=2)
    source.write_bytes(data)
    client = tus_client.TusClient(f"{live_server.url}/api/v1/uploads/", headers={"Authorization": f"Token {key}"})
    uploader = client.uploader(str(source), metadata={"filename": source.name, "md5": hashlib.md5(data).hexdigest()},
                               upload_checksum=True)
    uploader.upload()
    upload = Upload.objects.get()
    assert upload.state == "received" and upload.path.read_bytes() == data and queue() == 1
    assert uploader.url.startswith(live_server.url)


def test_tuspy_parallel_parts_are_concatenated_and_loaded_once(live_server, key, queue, tmp_path):
    data = payload(400_000, seed=3)
    pieces = [data[i:i + 100_000] for i in range(0, len(data), 100_000)]
    urls: list[str | None] = [None] * len(pieces)

    def send(i: int) -> None:
        part = tmp_path / f"part{i}"
        part.write_bytes(pieces[i])
        client = tus_client.TusClient(f"{live_server.url}/api/v1/uploads/",
                                      headers={"Authorization": f"Token {key}", "Upload-Concat": "partial"})
        uploader = client.uploader(str(part), chunk_size=32 * 1024, upload_checksum=True)
        uploader.upload()
        urls[i] = uploader.url

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(pieces))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(urls)
    headers = {"Authorization": f"Token {key}", "Tus-Resumable": "1.0.0",
               "Upload-Concat": "final;" + " ".join(urlsplit(u).path for u in urls),
               "Upload-Metadata": f"filename {b64(NAME.format(seq=3))},md5 {b64(hashlib.md5(data).hexdigest())}"}
    answers = []
    barrier = threading.Barrier(2)

    def final() -> None:
        barrier.wait()
        answers.append(requests.post(f"{live_server.url}/api/v1/uploads/", headers=headers, timeout=30))

    finals = [threading.Thread(target=final) for _ in range(2)]  # a client that retried at once
    for t in finals:
        t.start()
    for t in finals:
        t.join(60)
    assert [a.status_code for a in answers] == [201, 201], [a.content for a in answers]
    assert answers[0].headers["Location"] == answers[1].headers["Location"]
    upload = Upload.objects.get(concat="final")
    assert upload.state == "received" and upload.path.read_bytes() == data and upload.length == len(data)
    assert queue() == 1


def test_two_patches_at_one_offset_never_interleave(live_server, key, tmp_path):
    base = live_server.url
    host, port = urlsplit(base).hostname, urlsplit(base).port
    first, second = payload(200_000, seed=1), payload(200_000, seed=2)
    path = tus_create(base, key, len(first), filename=NAME.format(seq=4))
    sock = socket.create_connection((host, port), timeout=30)
    try:
        sock.sendall(raw_patch_head(host, port, path, key, 0, len(first)) + first[:50_000])
        wait_for(lambda: Upload.objects.filter(lease__isnull=False).exists())  # the first holds the upload

        conn = http.client.HTTPConnection(host, port, timeout=30)
        conn.request("PATCH", path, body=second, headers={
            "Authorization": f"Token {key}", "Tus-Resumable": "1.0.0", "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream"})
        answer = conn.getresponse()
        body = answer.read()
        assert answer.status == 409 and b"E9015" in body

        sock.sendall(first[50_000:])
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 204 and response.getheader("Upload-Offset") == str(len(first))
    finally:
        sock.close()
    upload = Upload.objects.get()
    assert upload.path.read_bytes() == first and upload.offset == len(first)


def test_two_patches_racing_at_one_offset_write_one_chunk(live_server, key):
    base = live_server.url
    host, port = urlsplit(base).hostname, urlsplit(base).port
    chunks = [payload(100_000, seed=5), payload(100_000, seed=6)]
    path = tus_create(base, key, 100_000, filename=NAME.format(seq=5))
    barrier = threading.Barrier(2)
    statuses = {}

    def send(i: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        barrier.wait()
        conn.request("PATCH", path, body=chunks[i], headers={
            "Authorization": f"Token {key}", "Tus-Resumable": "1.0.0", "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream"})
        statuses[i] = conn.getresponse().status

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(statuses.values()) == [204, 409], statuses
    winner = next(i for i, s in statuses.items() if s == 204)
    assert Upload.objects.get().path.read_bytes() == chunks[winner]


# --- the production server: bodies streamed, never whole in memory -------------------------------------------------


def _worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _send(port: int, key: str, path: str, offset: int, size: int, seed: int) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.putrequest("PATCH", path)
    for name, value in (("Authorization", f"Token {key}"), ("Tus-Resumable", "1.0.0"),
                        ("Upload-Offset", str(offset)), ("Content-Type", "application/offset+octet-stream"),
                        ("Content-Length", str(size))):
        conn.putheader(name, value)
    conn.endheaders()
    block = payload(1024 * 1024, seed=seed)
    left = size
    while left:
        conn.send(block[:min(left, len(block))])
        left -= min(left, len(block))
    response = conn.getresponse()
    response.read()
    return response


def test_large_chunks_stream_to_disk_with_flat_memory_under_gunicorn(key, tmp_path):
    media = tmp_path / "gmedia"
    mb = 1024 * 1024
    with Gunicorn(database_url_of_this_test(), tmp_path / "web.log", workers=1,
                  extra_env={"MEDIA_ROOT": str(media), "CARBONPARK_APP_CONCURRENCY": "4"}) as web:
        worker = _worker_pid(web.proc.pid)
        auth = {"Authorization": f"Token {key}", "Tus-Resumable": "1.0.0"}
        meta = f"filename {b64(NAME.format(seq=6))},md5 {b64('0' * 32)}"  # a wrong MD5: received, never loaded
        status, headers, _ = web.request("POST", "/api/v1/uploads/", b"", {
            **auth, "Upload-Length": "2048", "Upload-Metadata": meta})
        assert status == 201
        warm = _send(web.port, key, headers["location"], 0, 2048, seed=1)  # every code path imported once
        assert warm.status == 204
        before = _peak_rss_kb(worker)

        size = 15 * mb + 40 * mb  # a chunk just under the 16 MB that gunicorn.conf.py buffers, then a 40 MB one
        status, headers, _ = web.request("POST", "/api/v1/uploads/", b"", {
            **auth, "Upload-Length": str(size), "Upload-Metadata": meta})
        path = headers["location"]
        first = _send(web.port, key, path, 0, 15 * mb, seed=2)
        assert first.status == 204 and first.getheader("Upload-Offset") == str(15 * mb)
        second = _send(web.port, key, path, 15 * mb, 40 * mb, seed=3)
        assert second.status == 204 and second.getheader("Upload-Offset") == str(size)
        after = _peak_rss_kb(worker)
    upload = Upload.objects.get(length=size)
    assert upload.state == "failed" and upload.error_code == "E9030"
    assert (media / "uploads" / str(upload.pk)).stat().st_size == size
    grown_mb = (after - before) / 1024
    print(f"gunicorn worker peak RSS: {before / 1024:.1f} MB before, {after / 1024:.1f} MB after 55 MB in 2 chunks")
    assert grown_mb < 8, f"the worker's peak memory grew by {grown_mb:.1f} MB for 55 MB of chunks"
