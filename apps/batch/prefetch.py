"""Reading a batch file ahead of its load (issue #11 benchmark).

A file load alternates two kinds of work: Python parsing the next rows (CSV, XML, XLSX cells into records) and
PostgreSQL storing the last batch, during which the loader only waits. ``Prefetch`` runs the parsing in a thread,
at most ``depth`` batches ahead, so that the two overlap on a machine with more than one core; psycopg releases
the GIL while it waits for the database. The parsers are pure (no Django, no database: tests/test_layering.py),
so the thread touches no connection; everything that writes stays in the caller's thread and transaction.

While a prefetch runs, the interpreter's switch interval is 0.2 ms instead of 5 ms. The consumer sends a dozen
statements per batch; after each answer it needs the GIL back, and the parsing thread, always busy, would keep it
for up to the whole interval while PostgreSQL sits idle. Measured (bench/batch_load.py, 600 000 CSV rows, 2 cores,
runs alternated): 47 700-53 200 rows/s at 5 ms, 64 000-77 500 at 0.2 ms, 65 500 at 0.1 ms.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Iterable, Iterator

_END = object()
SWITCH_INTERVAL = 0.0002  # seconds, while any prefetch runs (see above)
_switch_lock = threading.Lock()
_running = 0
_saved_interval = None


def _switch_fast() -> None:
    global _running, _saved_interval
    with _switch_lock:
        if _running == 0:
            _saved_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(SWITCH_INTERVAL, _saved_interval))
        _running += 1


def _switch_back() -> None:
    global _running
    with _switch_lock:
        _running -= 1
        if _running == 0 and _saved_interval is not None:
            sys.setswitchinterval(_saved_interval)


class Prefetch:
    """Iterate ``source`` in a thread, at most ``depth`` items ahead of the consumer. An exception raised by
    ``source`` is raised again in the consumer where it occurred in the sequence (after the items before it).
    ``close()`` (leaving the ``with`` block) stops the thread and waits for it, so the source (a parser reading
    a temporary file) never outlives the block."""

    def __init__(self, source: Iterable, depth: int = 1):
        self._started = False
        self._source = source
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="batch-prefetch", daemon=True)

    def __enter__(self) -> Prefetch:
        _switch_fast()
        self._started = True
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        it = iter(self._source)
        try:
            for item in it:
                if not self._put((True, item)):
                    return
            self._put((True, _END))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._put((False, exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator:
        while True:
            ok, item = self._queue.get()
            if not ok:
                raise item
            if item is _END:
                return
            yield item

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:  # unblock a producer waiting for room
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(timeout=0.05)
        if self._started:
            self._started = False
            _switch_back()
