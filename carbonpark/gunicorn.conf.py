"""Production serving: gunicorn (WSGI), gevent workers.

Slow clients (issue #7): a sync worker reads a request's headers and body itself, so five clients trickling
headers held all five workers and /healthz stopped answering. A gevent worker reads every connection in a
greenlet of its own: a trickling client holds one greenlet and one file descriptor, never a worker, and
the others keep being served (tests/test_slow_clients.py; figures in bench/README.md). Production puts
the buffering TLS front of deploy/nginx/ before it as well.
"""

import io
import multiprocessing
import os

# CARBONPARK_PORT first: a generic PORT in the environment may be meant for another program.
HOST = os.environ.get("CARBONPARK_HOST", "127.0.0.1")
PORT = os.environ.get("CARBONPARK_PORT") or os.environ.get("PORT", "8000")
bind = f"{HOST}:{PORT}"
# One gevent worker per core, at least two (a worker being replaced after max_requests never leaves none): a gevent
# worker serves all its connections at once, so processes beyond the cores only compete for them (2 x cores + 1 is
# the rule for sync workers). On 2 cores, 2 workers served 1.5x the one-reading pushes of 5 at 0.8x the CPU per
# request (bench/README.md, http_small, issue #9 deliverable 6).
workers = int(os.environ.get("WEB_CONCURRENCY") or max(2, multiprocessing.cpu_count()))
worker_class = "gevent"
worker_connections = 1000  # per worker: open client connections, slow ones included
# One greenlet per request: the worker's requests share a bounded database pool (carbonpark/settings.py), so that
# a thousand concurrent clients never ask PostgreSQL for a thousand connections.
os.environ.setdefault("CARBONPARK_DB_POOL", "8")
# Below deploy/nginx's proxy_read_timeout (60 s, R-8.1.2.2): a stuck worker is replaced before the front gives up.
timeout = 50
graceful_timeout = 20
keepalive = 5
max_requests = 20000
max_requests_jitter = 2000
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
# The control socket (gunicornc) of this instance, under its own var/: the default ($XDG_RUNTIME_DIR or
# ~/.gunicorn/gunicorn.ctl) is one path shared by every gunicorn of the user, so a second instance took it over.
control_socket = os.path.join(os.environ.get("CARBONPARK_VAR") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "var"), "run", "gunicorn.ctl")

# Requests inside Django at once, per gevent worker; the others wait their turn in arrival order, before Django,
# holding neither a database connection nor CPU. Without it a worker under more load than it can serve runs every
# request at once, each ever slower, until they wait out the database pool's time-out together. /healthz (and
# /metrics) skip the queue: a health probe must not wait behind the load.
APP_CONCURRENCY = int(os.environ.get("CARBONPARK_APP_CONCURRENCY", "4"))  # <= CARBONPARK_DB_POOL
UNQUEUED = ("/healthz", "/metrics")

# Request buffering, as the production front does it (nginx's proxy_request_buffering): a body up to the API's
# limit is read in full, in the connection's own greenlet, before Django sees the request. A client trickling
# its body then holds no database connection (Django takes one from the pool for authentication before the
# view reads the body). A chunked body is read up to one byte past the limit; larger Content-Length bodies are
# left unread: the application refuses them (E1004).
BUFFER_LIMIT = 16 * 1024 * 1024  # carbonpark/settings.py DATA_UPLOAD_MAX_MEMORY_SIZE


class Slots:
    """APP_CONCURRENCY places in Django, handed over strictly in arrival order. gevent's semaphore lets a request
    that arrives while a released place is still being passed to the longest waiter take it first: under 1 000
    kept-alive connections the quick ones went round again and again while others waited out the whole run
    (p50 80 ms, p99 9 s). Here a released place goes straight to the first waiter."""

    def __init__(self, size: int):
        from collections import deque

        self.free = size
        self.waiting = deque()

    def acquire(self) -> None:
        if self.free > 0 and not self.waiting:
            self.free -= 1
            return
        from gevent.event import Event

        turn = Event()
        self.waiting.append(turn)
        try:
            turn.wait()
        except BaseException:
            if turn in self.waiting:  # still in line: leave it
                self.waiting.remove(turn)
            elif turn.is_set():  # handed a place just now: pass it on
                self.release()
            raise

    def release(self) -> None:
        if self.waiting:
            self.waiting.popleft().set()  # the place passes to the first in line, never back to the pool
        else:
            self.free += 1


# Resumable uploads (apps/uploads, tus) are the exception: a PATCH carries up to UPLOAD_MAX_BYTES (100 MB) that the
# view streams to disk in pieces, so their bodies are never read into memory here. Nor do they wait for a place: a
# chunk may take minutes on a slow link, and the view holds no database connection while its bytes arrive.
STREAMED = "/api/v1/uploads/"


def pre_request(worker, req):
    from gunicorn.http.body import Body
    from gunicorn.http.errors import NoMoreData

    if req.path.startswith(STREAMED) and req.method in ("PATCH", "POST"):
        return
    headers = dict(req.headers)
    length = headers.get("CONTENT-LENGTH", "")
    chunked = "chunked" in headers.get("TRANSFER-ENCODING", "").lower()
    if req.body is None or not (chunked or (length.isdigit() and 0 < int(length) <= BUFFER_LIMIT)):
        _queue(worker, req)
        return
    if req._expected_100_continue:  # the client waits for it before sending the body
        req.unreader.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        req._expected_100_continue = False
    data = req.body.read(BUFFER_LIMIT + 1) if chunked else req.body.read()
    if not chunked and len(data) != int(length):  # the client went away midway: nothing for the application
        raise NoMoreData(data)
    if len(data) > BUFFER_LIMIT:  # a chunked body past the limit: the application refuses it (413); the rest
        req.must_close = True     # is never read, so the connection closes after the answer
    req.body = Body(io.BytesIO(data))
    _queue(worker, req)


def _queue(worker, req):
    slots = getattr(worker, "carbonpark_slots", None)
    if slots is not None and req.path not in UNQUEUED:
        slots.acquire()
        req.carbonpark_slot = True


def post_request(worker, req, environ, resp):
    if getattr(req, "carbonpark_slot", False):  # gunicorn calls this whatever happened after pre_request
        req.carbonpark_slot = False
        worker.carbonpark_slots.release()


LAST_SEEN_INTERVAL = float(os.environ.get("CARBONPARK_LAST_SEEN_INTERVAL", "0.5"))


def worker_exit(server, worker):
    """A worker stopping writes the last-seen marks it still holds."""
    try:
        from apps.ingestion import lastseen
    except Exception:  # noqa: BLE001 - a worker that never loaded the application holds none
        return
    lastseen.flush()


def post_worker_init(worker):
    """Import every view before the first request: a worker that has just booted (at start, or after
    max_requests) answers at once instead of spending its first request importing the URLconf."""
    from django.urls import get_resolver

    patterns = get_resolver().url_patterns
    if type(worker).__name__ == "GeventWorker":
        worker.carbonpark_slots = Slots(APP_CONCURRENCY)
        from apps.ingestion import lastseen

        # Last seen of the batches' sources: written together every half second, not one transaction per
        # request (apps/ingestion/lastseen.py).
        lastseen.defer(LAST_SEEN_INTERVAL)
    worker.log.info("Worker ready (pid: %s, %d URL patterns)", worker.pid, len(patterns))
