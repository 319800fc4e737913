"""The command-line upload client (issue #11 item 3; R-7.2.2, R-8.4.2.2): ``manage.py upload FILE…``.

Each file is first checked here with the parsers the server runs (apps.batch.parsers: the §7 name, the encoding,
the header and metadata, every row; and each row's timestamp as the pipeline reads it): a file with a problem is
not sent. Then it goes to the platform's tus server (/api/v1/uploads/) with tuspy, in chunks with a checksum each,
whole or as parallel parts joined by the concatenation extension. Every upload's URL is kept in a small state file
under a fingerprint of the file (server, park, name, size, MD5, parts), so a run that was interrupted resumes from
the offset the server reports (HEAD) instead of sending again; finally the client waits for the load and prints the
counts and the rejection report's links.

No database is used: the client runs wherever the files are, with the server's URL and an API token."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from urllib.parse import urljoin

import requests
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError, TusUploadFailed

from apps.batch.parsers import BatchFile, FileError, ParsedRecord, RowError

SHOWN_PROBLEMS = 20
FINAL_STATES = ("loaded", "failed", "expired")


class Refused(Exception):
    """The file is not (or no longer) sent: a problem found here, or a 4xx the server answered with its code."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code} {message}")
        self.code, self.message = code, message


@dataclass
class Problem:
    row: int | None
    column: str
    code: str
    message: str

    def __str__(self):
        where = f"row {self.row}" if self.row is not None else "file"
        return f"  {where}{', ' + self.column if self.column else ''}: {self.code} {self.message}"


@dataclass
class CheckResult:
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    file_error: Problem | None = None
    checked_content: bool = True

    @property
    def ok(self) -> bool:
        return self.file_error is None and not self.problems


def _timestamp_problem(record: dict, row: int, lang: str) -> Problem | None:
    """The row's timestamp read as the pipeline reads it (apps.ingestion.normalize.parse_timestamp)."""
    from apps.ingestion.normalize import Refused as RecordRefused
    from apps.ingestion.normalize import parse_timestamp

    raw = record.get("timestamp")
    if raw is None:
        return None
    try:
        parse_timestamp(raw, UTC)  # the park's zone shifts the instant, not whether it reads
    except RecordRefused as exc:
        return Problem(row, "timestamp", exc.error.code, exc.error.message(lang, **exc.params))
    return None


def check_file(path: Path, filename: str, park_code: str | None, lang: str = "zh-hans") -> CheckResult:
    """Check one file as the server's loader will (R-7.2.2): the name, then the content row by row. A sealed
    file (.enc) is checked by its name only: its content needs the park's key, which stays on the server."""
    en = lang.startswith("en")
    result = CheckResult()
    try:
        batch = BatchFile(str(path), filename, park_code=park_code)
        if batch.sealed:
            result.checked_content = False
            return result
        with batch as f:
            for item in f.items():
                result.rows += 1
                if type(item) is RowError:
                    result.problems.append(Problem(item.row, item.column, item.code,
                                                   item.message_en if en else item.message_zh))
                elif type(item) is ParsedRecord:
                    problem = _timestamp_problem(item.record, item.row, lang)
                    if problem is not None:
                        result.problems.append(problem)
    except FileError as exc:
        result.file_error = Problem(None, "", exc.code, exc.message_en if en else exc.message_zh)
    return result


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class RangeFile:
    """Bytes [start, end) of a file as a stream of their own (a part sent in parallel). ``close`` is a no-op:
    tuspy closes the stream it is handed after reading its fingerprint."""

    def __init__(self, path: Path, start: int, end: int):
        self._fh = open(path, "rb")  # noqa: SIM115 - closed by release()
        self.start, self.end, self.pos = start, end, 0

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: self.end - self.start}[whence]
        self.pos = max(0, min(base + offset, self.end - self.start))
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, size: int = -1) -> bytes:
        left = self.end - self.start - self.pos
        size = left if size is None or size < 0 else min(size, left)
        self._fh.seek(self.start + self.pos)
        data = self._fh.read(size)
        self.pos += len(data)
        return data

    def close(self):
        pass

    def release(self):
        self._fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class State:
    """Upload URLs by file fingerprint in a JSON file (as tuspy's storage keeps them), safe across threads."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def get(self, key: str) -> dict:
        with self._lock:
            return dict(self._read().get(key) or {})

    def update(self, key: str, **values) -> None:
        with self._lock:
            data = self._read()
            entry = data.setdefault(key, {})
            entry.update(values)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
            os.replace(tmp, self.path)

    def forget(self, key: str) -> None:
        with self._lock:
            data = self._read()
            if data.pop(key, None) is not None:
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
                os.replace(tmp, self.path)


class Progress:
    """A plain text progress bar on stderr, shared by the parts of one file."""

    def __init__(self, label: str, total: int, stream=None):
        self.label, self.total, self.done = label, max(total, 1), 0
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._last = 0.0

    def set(self, done: int) -> None:
        with self._lock:
            self.done = done
            self._draw()

    def add(self, n: int) -> None:
        with self._lock:
            self.done += n
            self._draw()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.2 and self.done < self.total:
            return
        self._last = now
        frac = min(self.done / self.total, 1.0)
        bar = "#" * int(frac * 30)
        self.stream.write(f"\r{self.label} [{bar:<30}] {frac * 100:5.1f} % {self.done}/{self.total} B")
        self.stream.flush()

    def finish(self) -> None:
        with self._lock:
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()


def _problem_of(exc: Exception) -> tuple[int | None, Refused | None]:
    """The HTTP status of a tuspy error, and the server's refusal when it is one (a 4xx other than 409/423:
    resending would not help)."""
    status = getattr(exc, "status_code", None)
    if status is None or not 400 <= status < 500 or status in (409, 423):
        return status, None
    content = getattr(exc, "response_content", b"") or b""
    try:
        body = json.loads(content)
        return status, Refused(body["code"], body["message"])
    except (ValueError, KeyError, TypeError):
        return status, Refused(f"HTTP {status}", content[:200].decode("utf-8", "replace"))


@dataclass
class Options:
    base_url: str
    token: str
    park: str | None = None
    parts: int = 1
    chunk_size: int = 5 * 1024 * 1024
    retries: int = 5
    retry_delay: float = 2.0
    wait: bool = True
    wait_timeout: float = 3600.0
    lang: str = "zh-hans"
    state_path: Path = field(default_factory=lambda: Path.home() / ".cache" / "carbonpark" / "uploads.json")
    out: object = None
    err: object = None

    @property
    def endpoint(self) -> str:
        return self.base_url.rstrip("/") + "/api/v1/uploads/"

    def headers(self) -> dict:
        return {"Authorization": f"Token {self.token}", "Accept-Language": self.lang}


class Sender:
    """Sends one checked file and waits for its load (R-7.2.2, R-8.4.2.2)."""

    def __init__(self, opts: Options, path: Path, md5: str, state: State):
        self.opts, self.path, self.md5, self.state = opts, path, md5, state
        self.size = path.stat().st_size
        self.name = path.name
        parts = max(1, min(opts.parts, self.size or 1))
        self.ranges = [(self.size * i // parts, self.size * (i + 1) // parts) for i in range(parts)]
        self.key = hashlib.sha256(json.dumps([opts.endpoint, opts.park or "", self.name, self.size, md5, parts])
                                  .encode()).hexdigest()[:32]
        self.progress = Progress(self.name, self.size, opts.err)

    def say(self, text: str) -> None:
        print(text, file=self.opts.err or sys.stderr, flush=True)

    def metadata(self) -> dict:
        meta = {"filename": self.name, "md5": self.md5}
        if self.opts.park:
            meta["park"] = self.opts.park
        return meta

    # --- one stream (the whole file or one part) to one upload URL ---------------------------------------------
    def _send_range(self, index: int, start: int, end: int, url: str | None, headers: dict, metadata: dict,
                    on_url) -> str:
        stream = RangeFile(self.path, start, end)
        try:
            client = tus_client.TusClient(self.opts.endpoint, headers=headers)
            uploader = client.uploader(file_stream=stream, chunk_size=self.opts.chunk_size, metadata=metadata,
                                       upload_checksum=True, retries=0)
            length = end - start
            if url:
                try:
                    uploader.set_url(url)
                    uploader.offset = uploader.get_offset()  # where the server stands (R-8.4.2.2 c)
                    self.say(f"{self.name}{f' part {index + 1}' if len(self.ranges) > 1 else ''}: resuming "
                             f"{url} at byte {uploader.offset} of {length}")
                except TusCommunicationError as exc:
                    if getattr(exc, "status_code", None) not in (404, 410):
                        raise
                    url = None  # expired or removed: send again from the start
            if not url:
                try:
                    url = uploader.create_url()
                except TusCommunicationError as exc:
                    _status, refusal = _problem_of(exc)
                    raise refusal or exc from None
                uploader.set_url(url)
                uploader.offset = 0
                on_url(url)
            self.progress.add(uploader.offset)
            failures = 0
            while uploader.offset < length:
                before = uploader.offset
                try:
                    uploader.upload_chunk()
                    failures = 0
                    self.progress.add(uploader.offset - before)
                except (TusUploadFailed, TusCommunicationError) as exc:
                    _status, refusal = _problem_of(exc)
                    if refusal is not None:
                        raise refusal from None
                    failures += 1
                    if failures > self.opts.retries:
                        raise
                    time.sleep(self.opts.retry_delay)
                    with contextlib.suppress(TusCommunicationError):
                        uploader.offset = uploader.get_offset()
                        self.progress.add(uploader.offset - before)
            return url
        finally:
            stream.release()

    def send(self) -> str:
        """The upload's URL once every byte is on the server (and the parts joined)."""
        saved = self.state.get(self.key)
        if saved.get("final"):
            self.progress.set(self.size)
            self.progress.finish()
            return saved["final"]
        if len(self.ranges) == 1:
            url = self._send_range(0, 0, self.size, saved.get("url"), self.opts.headers(), self.metadata(),
                                   lambda u: self.state.update(self.key, url=u, file=str(self.path)))
            self.progress.finish()
            self.state.update(self.key, final=url)
            return url
        part_urls = list(saved.get("parts") or [None] * len(self.ranges))
        lock = threading.Lock()

        def remember(i):
            def on_url(u):
                with lock:
                    part_urls[i] = u
                    self.state.update(self.key, parts=list(part_urls), file=str(self.path))
            return on_url

        headers = {**self.opts.headers(), "Upload-Concat": "partial"}
        meta = {"park": self.opts.park} if self.opts.park else {}
        with ThreadPoolExecutor(len(self.ranges)) as pool:
            futures = [pool.submit(self._send_range, i, start, end, part_urls[i], headers, meta, remember(i))
                       for i, (start, end) in enumerate(self.ranges)]
            part_urls = [f.result() for f in futures]
        self.progress.finish()
        encoded = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in self.metadata().items())
        r = requests.post(self.opts.endpoint, timeout=120, headers={
            **self.opts.headers(), "Tus-Resumable": "1.0.0", "Upload-Concat": "final;" + " ".join(part_urls),
            "Upload-Metadata": encoded})
        if r.status_code != 201:
            with contextlib.suppress(ValueError, KeyError):
                raise Refused(r.json()["code"], r.json()["message"])
            raise Refused(f"HTTP {r.status_code}", r.text[:200])
        url = urljoin(self.opts.endpoint, r.headers["Location"])
        self.state.update(self.key, final=url)
        return url

    def wait(self, url: str) -> dict:
        """The upload's state once its load ended (or the wait timed out)."""
        deadline = time.monotonic() + self.opts.wait_timeout
        shown = None
        while True:
            r = requests.get(url, headers={**self.opts.headers(), "Accept": "application/json"}, timeout=60)
            if r.status_code >= 400:
                with contextlib.suppress(ValueError, KeyError):
                    raise Refused(r.json()["code"], r.json()["message"])
                raise Refused(f"HTTP {r.status_code}", r.text[:200])
            data = r.json()
            if data["state"] in FINAL_STATES or time.monotonic() > deadline:
                return data
            if data["state"] != shown or data["state"] == "loading":
                shown = data["state"]
                rows = (data.get("load") or {}).get("rows", 0)
                self.say(f"{self.name}: {data['state']}{f', {rows} rows' if data['state'] == 'loading' else ''}")
            time.sleep(1.0)


def run(paths: list[Path], opts: Options, *, check_only: bool = False, allow_row_errors: bool = False) -> int:
    """Check, send and follow each file; 0 when every file was loaded, 1 when any was refused (here or by the
    server) or failed to load, 2 when a file could not be sent (the network gave up: run again to resume)."""
    out, err = opts.out or sys.stdout, opts.err or sys.stderr
    state = State(opts.state_path)
    status = 0
    for path in paths:
        name = path.name
        if not path.is_file():
            print(f"{name}: no such file", file=err)
            status = max(status, 1)
            continue
        result = check_file(path, name, opts.park, opts.lang)
        if result.file_error is not None:
            print(f"{name}: refused, not sent\n{result.file_error}", file=err)
            status = max(status, 1)
            continue
        if result.problems:
            print(f"{name}: {len(result.problems)} of {result.rows} rows have problems", file=err)
            for p in result.problems[:SHOWN_PROBLEMS]:
                print(p, file=err)
            if len(result.problems) > SHOWN_PROBLEMS:
                print(f"  … and {len(result.problems) - SHOWN_PROBLEMS} more", file=err)
            if not allow_row_errors:
                print(f"{name}: refused, not sent (--allow-row-errors sends it; the platform then rejects "
                      f"those rows)", file=err)
                status = max(status, 1)
                continue
        elif result.checked_content:
            print(f"{name}: checked, {result.rows} rows, no problem", file=out)
        else:
            print(f"{name}: sealed (.enc): the name is checked; the content is checked by the platform", file=out)
        if check_only:
            continue
        sender = Sender(opts, path, file_md5(path), state)
        try:
            url = sender.send()
        except Refused as exc:
            sender.progress.finish()
            print(f"{name}: refused by the platform: {exc.code} {exc.message}", file=err)
            state.forget(sender.key)
            status = max(status, 1)
            continue
        except (TusUploadFailed, TusCommunicationError, requests.RequestException, OSError) as exc:
            sender.progress.finish()
            print(f"{name}: interrupted ({str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}); "
                  f"run the same command again to resume", file=err)
            status = max(status, 2)
            continue
        print(f"{name}: sent, {url}", file=out)
        if not opts.wait:
            continue
        try:
            data = sender.wait(url)
        except (Refused, requests.RequestException) as exc:
            print(f"{name}: the load's state cannot be read: {exc}", file=err)
            status = max(status, 2)
            continue
        state.forget(sender.key)
        status = max(status, _report(name, data, opts, out, err))
    return status


def _report(name: str, data: dict, opts: Options, out, err) -> int:
    load = data.get("load") or {}
    if data["state"] == "loaded":
        print(f"{name}: loaded: {load.get('rows', 0)} rows, {load.get('accepted', 0)} accepted, "
              f"{load.get('duplicates', 0)} duplicates, {load.get('rejected', 0)} rejected", file=out)
    elif data["state"] in ("failed", "expired"):
        error = data.get("error") or {}
        print(f"{name}: {data['state']}: {error.get('code', '')} {error.get('message', '')}", file=err)
    else:
        print(f"{name}: still {data['state']} (stopped waiting); GET {data['id']} later", file=out)
    for fmt, link in (data.get("report") or {}).items():
        if link:
            print(f"{name}: rejection report ({fmt.upper()}): {urljoin(opts.base_url.rstrip('/') + '/', link)}",
                  file=out)
    return 0 if data["state"] == "loaded" else 1
