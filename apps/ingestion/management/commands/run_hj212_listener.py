import asyncio
import logging
import signal
import socket

from django.core.management.base import BaseCommand

from apps.core.heartbeat import Heartbeat
from apps.ingestion.channels.hj212 import make_listener


class Command(BaseCommand):
    help = ("Listen for HJ 212-2017 monitoring stations over TCP and store their uploads until stopped "
            "(sources are matched by settings.hj212.mn).")

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=9212)
        parser.add_argument("--read-timeout", type=float, default=120.0,
                            help="seconds of silence before a station's connection is closed")
        parser.add_argument("--lenient-crc", action="store_true",
                            help="accept packets whose CRC fails (legacy devices); still counted as E7002")

    def handle(self, *args, host, port, read_timeout, lenient_crc, **options):
        logging.getLogger("carbonpark.hj212").setLevel(logging.INFO)
        asyncio.run(self._run(host, port, read_timeout, lenient_crc))

    async def _run(self, host, port, read_timeout, lenient_crc):
        listener, callback = make_listener(host, port, read_timeout=read_timeout, verify_crc=not lenient_crc)
        await listener.start()
        self.stdout.write(f"HJ 212 listener on {host}:{listener.port}")
        # Beats from the event loop: a blocked loop stops beating and /healthz names the listener.
        heartbeat = Heartbeat("hj212", f"{socket.gethostname()}:{listener.port}")
        beating = asyncio.create_task(heartbeat.run_async())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        beating.cancel()
        await asyncio.to_thread(heartbeat.stop)
        await listener.close()
        await callback.aclose()
        self.stdout.write(f"stopped; errors {dict(listener.error_counts)}, stats {dict(listener.stats)}")
