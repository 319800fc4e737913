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

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.demo.management.commands.demo_setup import DEMO_PARK
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
    ("JSTZ01-EM-0003", "CS010201"): ("kWh", 95.0, 0.9),
}
# Cumulative registers when the device simulators are not running (issue #12 item 2; demo_setup.DEMO_REGISTERS):
# register units per second at the day's mean, daily swing, rollover point; the same rates as the simulators.
REGISTERS = {
    ("JSTZ01-EM-0001", "CS010201"): (0.01, 0.35, 1_000_000),
    ("JSTZ01-EM-0002", "CS010201"): (0.5, 0.5, 10_000_000),
}


def register_value(at: datetime, rate: float, swing: float, modulus: float) -> float:
    """The register at ``at``: the integral of rate × (1 + swing × sin(daily phase)) since the epoch, modulo the
    rollover point. It only ever advances (swing < 1) and continues across restarts."""
    t = at.timestamp() + (at.utcoffset() or timedelta()).total_seconds()  # local seconds: the phase is local
    phase = (t / 3600 - 8) / 24 * 2 * math.pi
    total = rate * (t - swing * math.cos(phase) * 86400 / (2 * math.pi))
    return round(total % modulus, 2)


# Sent over MQTT by the demo, as devices would: sealed JSON and a TLV frame (interfaces.md §2, §4, §5).
MQTT_SOURCES = {"JSTZ01-CCUS-0001": "sealed-json", "JSTZ01-EM-0003": "tlv"}
# Fed by the device simulators when `make run` started them (DL/T 645, Modbus, HJ 212 via the listener).
SIMULATED = {"JSTZ01-EM-0001", "JSTZ01-EM-0002", "JSTZ01-WW-0001"}


def demo_batch(at: datetime, rng: random.Random, bad: bool) -> list[dict]:
    hour = at.hour + at.minute / 60
    batch = []
    for (sid, code), (unit, base, swing) in SHAPES.items():
        shape = 1 + swing * math.sin((hour - 8) / 24 * 2 * math.pi)
        value = round(base * shape * rng.uniform(0.95, 1.05), 3)
        if (sid, code) in REGISTERS:
            value = register_value(at, *REGISTERS[(sid, code)])
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
        mqtt_out = DemoDevices() if settings.MQTT_URL else None
        n = 0
        while not stop and (count == 0 or n < count):
            now = datetime.now(tz).replace(microsecond=0)
            batch = demo_batch(now, rng, bad=n % 30 == 29)
            if mqtt_out is not None:
                mqtt_out.publish([r for r in batch if r["sourceId"] in MQTT_SOURCES])
                batch = [r for r in batch if r["sourceId"] not in MQTT_SOURCES]
            if os.environ.get("CARBONPARK_SIM_MODBUS_PORT"):
                batch = [r for r in batch if r["sourceId"] not in SIMULATED]
            result = ingest_readings(batch, channel="demo", actor=f"demo_stream:{DEMO_PARK}")
            n += 1
            if n == 1 or n % 30 == 0:
                self.stdout.write(f"demo: batch {n}: accepted {result.accepted}, rejected {len(result.rejected)}")
            deadline = time.monotonic() + interval
            while not stop and time.monotonic() < deadline:
                time.sleep(0.2)


class DemoDevices:
    """The demo's MQTT devices: one connection with a Last Will, online status, and per message either
    a sealed JSON array (the CCUS gateway, whose key demo_setup provisioned) or a TLV frame."""

    def __init__(self):
        import paho.mqtt.client as mqtt

        from apps.ingestion.channels.mqtt import BrokerAddress

        addr = BrokerAddress.parse(settings.MQTT_URL)
        protocol = mqtt.MQTTv5 if settings.MQTT_PROTOCOL == 5 else mqtt.MQTTv311
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id="demo-devices",
                                  protocol=protocol)
        if addr.username:
            self.client.username_pw_set(addr.username, addr.password)
        if addr.tls:
            self.client.tls_set(ca_certs=settings.MQTT_CA_FILE or None)
        for sid in MQTT_SOURCES:
            self.client.will_set(f"carbonpark/{DEMO_PARK}/{sid}/status", b'{"state": "offline"}', qos=1, retain=True)
        self.client.connect(addr.host, addr.port, keepalive=60)
        self.client.loop_start()
        for sid in MQTT_SOURCES:
            self.client.publish(f"carbonpark/{DEMO_PARK}/{sid}/status", b'{"state": "online"}', qos=1, retain=True)

    def publish(self, records):
        import orjson

        from apps.protocols.codecs import envelope, tlv
        from apps.sources.models import SourceKey
        from apps.sources.services.keys import key_material

        for sid, how in MQTT_SOURCES.items():
            mine = [r for r in records if r["sourceId"] == sid]
            if not mine:
                continue
            if how == "tlv":
                frame = tlv.encode_frame([tlv.TlvRecord(
                    sid, r["dataCode"], int(datetime.strptime(r["timestamp"], "%Y-%m-%d %H:%M:%S").replace(
                        tzinfo=ZoneInfo("Asia/Shanghai")).timestamp() * 1000), value=r["value"], unit=r["unit"],
                    status="N") for r in mine])
                self.client.publish(f"carbonpark/{DEMO_PARK}/{sid}/tlv", frame, qos=1)
            else:
                key = SourceKey.objects.filter(source__source_id=sid, state="active").first()
                body = orjson.dumps(mine)
                if key is not None:
                    body = envelope.seal(body, key=key_material(key), key_id=key.key_id,
                                         content_type=envelope.CONTENT_JSON, source_id=sid)
                self.client.publish(f"carbonpark/{DEMO_PARK}/{sid}/data", body, qos=1)
