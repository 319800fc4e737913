"""Benchmark: callback delivery of anomaly notices to a third party (R-7.4.4.3, issue #13): --notices notices
(100 000 by default) queued for one platform and delivered by the project's sender (apps.integrations.callbacks
``deliver``: lease, Standard Webhooks signature, outbound HTTP with its timeouts, log, back-off) to a local receiver,
a threaded HTTP server on a free port, which goes down (answers 503, records nothing) for --down-seconds in the
middle of the run. The receiver counts webhook-ids: every notice must arrive exactly once (none missing, none
twice, none dead), else exit 1. Prints notices/s overall and outside the outage.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/<disposable db> .venv/bin/python -m bench.callbacks
    ... -m bench.callbacks --quick             # 10 000 notices, receiver down 10 s

The senders are --workers processes (forked), each taking the due notices whose id falls to it (the Celery
workers of production run the same ``deliver`` per notice; the task hop is left out). The back-off starts at
--backoff seconds (production: CALLBACK_BACKOFF_S, 30 s) so that the run ends soon after the outage.
The database's integrations_callbackdelivery table is emptied first: use a disposable database.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Receiver:
    def __init__(self):
        self.down = False
        self.lock = threading.Lock()
        self.seen: dict[str, int] = {}
        self.refused = 0
        self.unsigned = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                msg_id = self.headers.get("webhook-id", "")
                signed = self.headers.get("webhook-signature", "").startswith("v1,")
                with receiver.lock:
                    if receiver.down:
                        receiver.refused += 1
                        status = 503
                    else:
                        receiver.seen[msg_id] = receiver.seen.get(msg_id, 0) + 1
                        receiver.unsigned += not signed
                        status = 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/carbonpark/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self) -> int:
        with self.lock:
            return len(self.seen)


def setup(args):
    url = os.environ.get("DATABASE_URL")
    if not url:
        sys.exit("set DATABASE_URL to a disposable database")
    os.environ["OPEN_ALLOW_HTTP_URLS"] = "1"
    os.environ["CALLBACK_BACKOFF_S"] = str(args.backoff)
    os.environ["CALLBACK_MAX_ATTEMPTS"] = "30"
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, check=True, env=os.environ)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carbonpark.settings")
    import django

    django.setup()


def queue(n: int, url: str):
    from django.db import connection
    from django.utils import timezone

    from apps.accounts.access import SystemPrincipal
    from apps.accounts.models import Park
    from apps.accounts.services import save_park
    from apps.integrations.models import CallbackDelivery, Platform
    from apps.integrations.services import register_platform
    from tests.conftest import make_uscc

    with connection.cursor() as cur:
        cur.execute("TRUNCATE integrations_callbackdelivery")
    park = Park.objects.filter(code="CBB1").first() or save_park(actor="bench", code="CBB1", name_zh="回调基准园区",
                                                                  time_zone="Asia/Shanghai")
    platform = Platform.objects.filter(park=park).first()
    if platform is None:
        platform, _ = register_platform(actor=SystemPrincipal("bench"), park=park, name="Bench receiver",
                                        uscc=make_uscc("91110000MA01BNCH0"), base_url=url.rsplit("/", 2)[0],
                                        ip_whitelist=["127.0.0.1/32"], alert_email="ops@bench.invalid")
    Platform.objects.filter(pk=platform.pk).update(base_url=url.rsplit("/", 2)[0], use_backup=False,
                                                   state=Platform.State.ACTIVE)
    now = timezone.now()
    for start in range(0, n, 10_000):
        CallbackDelivery.objects.bulk_create([
            CallbackDelivery(platform=platform, webhook_id=f"msg_bench_{i}", url=url, event="anomaly.detected",
                             payload={"type": "anomaly.detected", "data": {"index": i, "code": "E3001",
                                                                           "source": "bench", "value": i * 0.5}},
                             next_at=now)
            for i in range(start, min(n, start + 10_000))], batch_size=2_000)
    return platform


def sender(index: int, workers: int, stop, counts):
    from django.db import connection
    from django.utils import timezone

    from apps.integrations import callbacks

    connection.close()  # a forked process opens its own connection
    try:
        while not stop.is_set():
            with connection.cursor() as cur:
                cur.execute("SELECT id FROM integrations_callbackdelivery WHERE state = 'pending' AND next_at <= %s "
                            "AND id %% %s = %s ORDER BY next_at LIMIT 500", [timezone.now(), workers, index])
                ids = [r[0] for r in cur.fetchall()]
            if not ids:
                time.sleep(0.05)
                continue
            for pk in ids:
                callbacks.deliver(pk)
                counts[index] += 1
    finally:
        connection.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--notices", type=int, default=100_000)
    p.add_argument("--down-seconds", type=float, default=60.0)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--backoff", type=float, default=1.0)
    p.add_argument("--quick", action="store_true", help="10 000 notices, the receiver down 10 s")
    args = p.parse_args()
    if args.quick:
        args.notices, args.down_seconds = min(args.notices, 10_000), min(args.down_seconds, 10.0)
    setup(args)
    from django.db.models import Count

    from apps.integrations.models import CallbackDelivery

    receiver = Receiver()
    t = time.perf_counter()
    queue(args.notices, receiver.url)
    print(f"queued {args.notices:,} notices in {time.perf_counter() - t:.1f} s; receiver {receiver.url}; "
          f"{args.workers} sender processes; back-off from {args.backoff} s", flush=True)
    import multiprocessing as mp

    from django.db import connections

    connections.close_all()
    ctx = mp.get_context("fork")
    stop, counts = ctx.Event(), ctx.Array("l", args.workers, lock=False)
    threads = [ctx.Process(target=sender, args=(i, args.workers, stop, counts)) for i in range(args.workers)]
    started = time.perf_counter()
    for th in threads:
        th.start()
    while receiver.delivered() < args.notices // 2:
        time.sleep(0.05)
    before = receiver.delivered()
    before_s = time.perf_counter() - started
    receiver.down = True
    print(f"{before:,} delivered in {before_s:.1f} s; receiver down for {args.down_seconds:.0f} s", flush=True)
    time.sleep(args.down_seconds)
    receiver.down = False
    up_at, up_count = time.perf_counter(), receiver.delivered()
    deadline = time.monotonic() + max(600.0, args.notices / 50)
    while receiver.delivered() < args.notices and time.monotonic() < deadline:
        if CallbackDelivery.objects.filter(state=CallbackDelivery.State.DEAD).exists():
            break
        time.sleep(0.1)
    total_s = time.perf_counter() - started
    stop.set()
    for th in threads:
        th.join()
    after_s = time.perf_counter() - up_at
    seen = receiver.seen
    twice = sum(1 for c in seen.values() if c > 1)
    missing = args.notices - len(seen)
    states = dict(CallbackDelivery.objects.values_list("state").annotate(n=Count("pk")).order_by())
    rate_up = (before + len(seen) - up_count) / (before_s + after_s)
    print(f"delivered once: {len(seen):,}/{args.notices:,}; twice or more: {twice}; missing: {missing}; "
          f"503 answers while down: {receiver.refused:,}; unsigned: {receiver.unsigned}; rows by state: {states}")
    print(f"overall {args.notices / total_s:,.0f} notices/s ({total_s:.1f} s incl. {args.down_seconds:.0f} s down); "
          f"{rate_up:,.0f} notices/s while the receiver was up; catching up after the outage: "
          f"{after_s:.1f} s for {len(seen) - up_count:,}")
    ok = not twice and not missing and not receiver.unsigned and states.get("delivered") == args.notices
    print("PASS: every notice delivered exactly once" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
