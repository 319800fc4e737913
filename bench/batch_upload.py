"""The upload phase of bench/batch_load.py (issue #11 benchmark): one batch file sent over loopback to gunicorn as
in production (carbonpark/gunicorn.conf.py), with tuspy, as one tus upload (single stream) and as ``parts``
parallel partial uploads concatenated by a final one (tus concatenation). MB/s for each, from the first request
to the answer that completes the upload (the server has then checked the whole file's MD5, R-8.4.2.2).

The completed uploads queue their load on the Celery broker of REDIS_URL; no worker runs here, and the queue's
entries made by this phase are removed at its end (the load itself is measured by load_file directly)."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench.http_ingest.common import say
from bench.http_ingest.server import Gunicorn, free_port

CHUNK = 8 * 1024 * 1024  # per PATCH: under the 16 MB a gunicorn worker buffers (gunicorn.conf.py)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _single(base: str, token: str, path: Path, name: str, md5: str) -> float:
    from tusclient import client as tus_client

    client = tus_client.TusClient(f"{base}/api/v1/uploads/", headers={"Authorization": f"Token {token}"})
    t = time.perf_counter()
    uploader = client.uploader(str(path), metadata={"filename": name, "md5": md5}, chunk_size=CHUNK,
                               upload_checksum=True)
    uploader.upload()
    return time.perf_counter() - t


def _parallel(base: str, token: str, path: Path, name: str, md5: str, parts: int, workdir: Path) -> float:
    """``parts`` byte ranges of the file, each a partial upload from its own thread, then the final upload that
    concatenates them. The pieces are cut into files before the clock starts (tuspy sends a file or stream)."""
    import requests
    from tusclient import client as tus_client

    size = path.stat().st_size
    step = -(-size // parts)
    pieces = []
    with open(path, "rb") as src:
        for i in range(parts):
            piece = workdir / f"part-{i}"
            with open(piece, "wb") as dst:
                left = min(step, size - i * step)
                while left > 0:
                    block = src.read(min(left, 1 << 20))
                    dst.write(block)
                    left -= len(block)
            pieces.append(piece)
    urls: list[str | None] = [None] * parts
    errors: list[BaseException] = []

    def send(i: int) -> None:
        try:
            client = tus_client.TusClient(f"{base}/api/v1/uploads/",
                                          headers={"Authorization": f"Token {token}", "Upload-Concat": "partial"})
            uploader = client.uploader(str(pieces[i]), chunk_size=CHUNK, upload_checksum=True)
            uploader.upload()
            urls[i] = uploader.url
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)

    t = time.perf_counter()
    threads = [threading.Thread(target=send, args=(i,)) for i in range(parts)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors or not all(urls):
        raise RuntimeError(f"a partial upload failed: {errors[:1]}")
    answer = requests.post(f"{base}/api/v1/uploads/", timeout=600, headers={
        "Authorization": f"Token {token}", "Tus-Resumable": "1.0.0",
        "Upload-Concat": "final;" + " ".join(urlsplit(u).path for u in urls),
        "Upload-Metadata": f"filename {_b64(name)},md5 {_b64(md5)}"})
    wall = time.perf_counter() - t
    if answer.status_code != 201:
        raise RuntimeError(f"the final upload was refused: {answer.status_code} {answer.text[:500]}")
    for piece in pieces:
        piece.unlink()
    return wall


def _state(url: str, name: str) -> tuple[str, int, str]:
    from bench.http_ingest.database import connect

    with connect(url) as conn:
        row = conn.execute("SELECT state, length, error_code FROM uploads_upload WHERE filename = %s "
                           "ORDER BY created_at DESC LIMIT 1", (name,)).fetchone()
    return row or ("missing", 0, "")


def run_uploads(url: str, token: str, csv_path: Path, workdir: Path, parts: int = 4, workers: int = 2) -> dict:
    """MB/s of the single-stream and the ``parts``-part upload of ``csv_path`` (its name with sequence numbers 101
    and 102, so neither is taken for the other)."""
    import redis

    media = workdir / "media"
    os.environ.update(MEDIA_ROOT=str(media), UPLOAD_MAX_BYTES=str(1 << 30), BATCH_MAX_BYTES=str(1 << 30))
    port = free_port()
    os.environ["CARBONPARK_PORT"] = str(port)
    broker = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    queued = broker.llen("celery")
    server = Gunicorn(url, port, workers)
    size_mb = csv_path.stat().st_size / 1e6
    md5 = _md5(csv_path)
    base = f"http://127.0.0.1:{port}"
    out = {"size_mb": size_mb}
    try:
        server.wait_ready(workers)
        stem = csv_path.name.rsplit("_", 1)[0]
        warm = workdir / f"{stem}_999.csv"  # every worker's code paths imported before the clock runs
        with open(csv_path, "rb") as src:
            warm.write_bytes(src.read(1 << 16))
        for i in range(workers):
            _single(base, token, warm, f"{stem}_9{i:02d}.csv", _md5(warm))
        warm.unlink()
        name = f"{stem}_101.csv"
        wall = _single(base, token, csv_path, name, md5)
        state = _state(url, name)
        out["single"] = {"wall": wall, "mb_s": size_mb / wall, "state": state[0]}
        say(f"tus upload, tuspy single stream, {CHUNK >> 20} MB chunks: {size_mb:.1f} MB in {wall:.1f} s, "
            f"{size_mb / wall:.1f} MB/s (upload {state[0]})")
        name = f"{stem}_102.csv"
        wall = _parallel(base, token, csv_path, name, md5, parts, workdir)
        state = _state(url, name)
        out["parallel"] = {"wall": wall, "mb_s": size_mb / wall, "state": state[0], "parts": parts}
        say(f"tus upload, tuspy {parts} parallel parts + final (concatenation): {size_mb:.1f} MB in {wall:.1f} s, "
            f"{size_mb / wall:.1f} MB/s (upload {state[0]})")
    finally:
        server.stop()
        # the loads these uploads queued: nobody consumes them here
        while broker.llen("celery") > queued:
            broker.lpop("celery")  # kombu pushes on the left
        import shutil

        shutil.rmtree(media, ignore_errors=True)
    return out
