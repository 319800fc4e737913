"""A live stream of demo readings through ingest_readings: the demo park's meters, every few seconds.

Now and then a reading that breaks a rule, so the alarms and rejections of the portal have something
to show."""

import math
import os
import random
import signal
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.core.management.base import BaseCommand

from apps.core.management.commands.demo_setup import DEMO_PARK
from apps.ingestion.services import ingest_readings

SHAPES = {
    # source, code, unit, base per minute, daily swing
    ("JSTZ01-EM-0001", "CS010201"): ("kWh", 560.0, 0.35),
    ("JSTZ01-EM-0002", "CS010201"): ("kWh", 180.0, 0.5),
    ("JSTZ01-HM-0001", "CS010301"): ("GJ", 1.8, 0.2),
    ("JSTZ01-FM-0001", "CS010101"): ("t", 0.9, 0.15),
    ("JSTZ01-WW-0001", "CS030201"): ("m3", 40.0, 0.4),
    ("JSTZ01-WW-0001", "CS030202"): ("mg/L", 38.0, 0.2),
    ("JSTZ01-CCUS-0001", "CK020101"): ("tCO2", 2.4, 0.1),
}


def demo_batch(at: datetime, rng: random.Random, bad: bool) -> list[dict]:
    hour = at.hour + at.minute / 60
    batch = []
    for (sid, code), (unit, base, swing) in SHAPES.items():
        shape = 1 + swing * math.sin((hour - 8) / 24 * 2 * math.pi)
        value = round(base * shape * rng.uniform(0.95, 1.05), 3)
        batch.append({"sourceId": sid, "dataCode": code, "timestamp": at.strftime("%Y-%m-%d %H:%M:%S"),
                      "value": value, "unit": unit, "status": "N"})
    if bad:
        batch.append({"sourceId": "JSTZ01-EM-0002", "dataCode": "CS010201",
                      "timestamp": (at + timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S"),
                      "value": -12.5, "unit": "kWh"})
    return batch


class Command(BaseCommand):
    help = "Stream demo readings into the demo park until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=float(os.environ.get("CARBONPARK_DEMO_INTERVAL", 10)))
        parser.add_argument("--count", type=int, default=0, help="stop after this many batches (0: never)")

    def handle(self, *args, interval, count, **options):
        stop = []
        signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
        rng = random.Random()
        tz = ZoneInfo("Asia/Shanghai")
        n = 0
        while not stop and (count == 0 or n < count):
            now = datetime.now(tz).replace(microsecond=0)
            result = ingest_readings(demo_batch(now, rng, bad=n % 30 == 29), channel="demo",
                                     actor=f"demo_stream:{DEMO_PARK}")
            n += 1
            if n == 1 or n % 30 == 0:
                self.stdout.write(f"demo: batch {n}: accepted {result.accepted}, rejected {len(result.rejected)}")
            deadline = time.monotonic() + interval
            while not stop and time.monotonic() < deadline:
                time.sleep(0.2)
