"""The MQTT channel (R-5.2.2.4, R-8.1.2.1, interfaces.md §2): a long-running consumer.

paho-mqtt 2.x, MQTT v5 (or v3.1.1), a persistent session, QoS 1, keep-alive 60 s. One consumer holds plain
subscriptions, which Mosquitto 2.0 restores after a restart, so that what devices publish before the
consumer is back is queued, not dropped. ``shared=True`` (``MQTT_SHARED_SUBSCRIPTION=1``) joins the
shared subscription ``$share/carbonpark/…`` instead, so that several consumers split the stream; Mosquitto
2.0 does not restore those after its own restart (deploy/mosquitto/README.md).

Messages are batched into one ingest_readings call and acknowledged (manual PUBACK, in arrival order)
only after that batch has committed: a crash or a kill loses nothing, and what the broker redelivers
is de-duplicated by the readings' identity. The same process publishes pending
downlink commands and applies status reports, Last Wills and command acks.

One bad message never stops the stream (house rule 8): what cannot be decoded is refused with its code;
a message that makes its batch fail for any reason but a database that is down is found by splitting
the batch, kept as a rejection (E5204, its exact bytes) and acknowledged with the rest. Only a
database that is down keeps the batch unacknowledged and retries it.
"""

from __future__ import annotations

import base64
import logging
import queue
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import orjson
import paho.mqtt.client as mqtt
from django.db import close_old_connections
from django.utils import timezone
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from apps.core.db import database_unavailable
from apps.core.heartbeat import Heartbeat
from apps.ingestion import errors
from apps.ingestion.channels.payloads import MAX_PAYLOAD, Decoded, Refusal, decode, raw_of, unprocessable
from apps.ingestion.config import current_config
from apps.ingestion.services import ingest_readings

log = logging.getLogger("carbonpark.mqtt")

SHARE_GROUP = "carbonpark"
TOPICS = ["carbonpark/+/+/data", "carbonpark/+/+/tlv", "carbonpark/+/+/status", "carbonpark/+/+/cmd/ack"]
SESSION_EXPIRY_S = 7 * 86400


@dataclass
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"MQTT_URL must be mqtt:// or mqtts://, got {url!r}")
        tls = parts.scheme in ("mqtts", "ssl")
        return cls(parts.hostname or "127.0.0.1", parts.port or (8883 if tls else 1883), tls,
                   unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password else None)


def parse_topic(topic: str):
    """carbonpark/{parkCode}/{sourceId}/{kind} → (park, source, kind) or None."""
    parts = topic.split("/")
    if len(parts) == 4 and parts[0] == "carbonpark" and parts[3] in ("data", "tlv", "status"):
        return parts[1], parts[2], parts[3]
    if len(parts) == 5 and parts[0] == "carbonpark" and parts[3:] == ["cmd", "ack"]:
        return parts[1], parts[2], "cmd/ack"
    return None


class MqttIngest:
    """One consumer. ``run()`` blocks until ``stop()``."""

    def __init__(self, url: str, *, client_id: str | None = None, protocol: int = 5, batch_messages: int = 2000,
                 batch_bytes: int = 2 * 1024 * 1024, batch_wait: float = 0.05, keepalive: int = 60,
                 ca_file: str | None = None, max_payload: int = MAX_PAYLOAD, shared: bool = False):
        self.address = BrokerAddress.parse(url)
        self.client_id = client_id or f"carbonpark-ingest-{socket.gethostname()}"
        self.protocol = mqtt.MQTTv5 if protocol == 5 else mqtt.MQTTv311
        # A batch is bounded by messages and by payload bytes (about 20 000 JSON readings, fewer
        # transactions' worth of TLV), so that one transaction never grows without limit.
        self.batch_messages, self.batch_bytes, self.batch_wait = batch_messages, batch_bytes, batch_wait
        self.keepalive = max(60, min(120, keepalive))  # R-8.1.2.1: 60–120 s
        self.max_payload = max_payload
        self.want_shared = shared
        self.label = f"mqtt:{self.client_id}"
        self.inbox: queue.Queue = queue.Queue()
        self.generation = 0
        # For the heartbeat (docs/operations-health.md): the batch in flight, the last commit, since when
        # the broker connection is down.
        self.in_flight, self.last_commit_at, self.down_since = None, None, time.time()
        self.unprocessable = 0  # messages kept as E5204 rejections since start
        self.connected = threading.Event()
        self._stop = threading.Event()
        kwargs = {"callback_api_version": mqtt.CallbackAPIVersion.VERSION2, "client_id": self.client_id,
                  "protocol": self.protocol, "manual_ack": True}
        if self.protocol == mqtt.MQTTv311:
            kwargs["clean_session"] = False
        self.client = mqtt.Client(**kwargs)
        if self.address.username:
            self.client.username_pw_set(self.address.username, self.address.password)
        if self.address.tls:
            self.client.tls_set(ca_certs=ca_file)
        # Back soon after a broker restart: with shared subscriptions that window is lost (see above).
        self.client.reconnect_delay_set(min_delay=1, max_delay=5)
        self.client.max_inflight_messages_set(1000)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    # --- network thread -------------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.warning("MQTT connect refused by %s:%s: %s", self.address.host, self.address.port, reason_code)
            return
        shared = self.want_shared and self.protocol == mqtt.MQTTv5
        if shared and properties is not None and getattr(properties, "SharedSubscriptionAvailable", 1) == 0:
            shared = False
        prefix = f"$share/{SHARE_GROUP}/" if shared else ""
        client.subscribe([(prefix + t, 1) for t in TOPICS])
        if self.protocol == mqtt.MQTTv5:
            # A session that switched mode keeps its other subscriptions: drop them, or messages come twice.
            other = "" if shared else f"$share/{SHARE_GROUP}/"
            client.unsubscribe([other + t for t in TOPICS])
        log.info("MQTT connected to %s:%s as %s (session present: %s, shared subscription: %s)",
                 self.address.host, self.address.port, self.client_id, flags.session_present, shared)
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        # Messages not yet acknowledged will be redelivered in the same session: forget them here, so
        # that no stale message id is acknowledged on the new connection.
        self.generation += 1
        self.connected.clear()
        dropped = 0
        while True:
            try:
                self.inbox.get_nowait()
                dropped += 1
            except queue.Empty:
                break
        if not self._stop.is_set():
            log.warning("MQTT connection lost (%s); %d unacknowledged messages will be redelivered; "
                        "reconnecting with back-off", reason_code, dropped)

    def _on_message(self, client, userdata, msg):
        self.inbox.put((self.generation, msg, time.time()))

    # --- processing thread ----------------------------------------------------------------------
    def connect(self):
        props = None
        if self.protocol == mqtt.MQTTv5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            props.ReceiveMaximum = 5000
            self.client.connect_async(self.address.host, self.address.port, self.keepalive, clean_start=False,
                                      properties=props)
        else:
            self.client.connect_async(self.address.host, self.address.port, self.keepalive)
        self.client.loop_start()

    def stop(self):
        self._stop.set()

    def run(self):
        self.connect()
        last_dispatch = 0.0
        heartbeat = Heartbeat("mqtt", self.client_id, state=self.lag).start()
        try:
            while not self._stop.is_set():
                batch = self._collect()
                if batch:
                    self.in_flight = batch
                    self._process(batch)
                    self.in_flight, self.last_commit_at = None, time.time()
                if time.monotonic() - last_dispatch > 1.0 and self.connected.is_set():
                    last_dispatch = time.monotonic()
                    self._dispatch_commands()
        finally:
            heartbeat.stop()
            self.client.disconnect()
            self.client.loop_stop()

    def lag(self) -> dict:
        """Messages received and not yet committed (the batch in flight, then the inbox), the arrival time of
        the oldest, and when the last batch was done: what /healthz calls lag."""
        batch = self.in_flight or []
        try:
            head = self.inbox.queue[0][2]
        except IndexError:
            head = None
        if self.connected.is_set():
            self.down_since = None
        elif self.down_since is None:
            self.down_since = time.time()
        return {"pending": len(batch) + self.inbox.qsize(), "oldest_at": batch[0][2] if batch else head,
                "last_commit_at": self.last_commit_at, "broker_down_since": self.down_since}

    def _collect(self):
        try:
            first = self.inbox.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        size = len(first[1].payload)
        deadline = time.monotonic() + self.batch_wait
        while len(batch) < self.batch_messages and size < self.batch_bytes:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                item = self.inbox.get(timeout=remaining)
            except queue.Empty:
                break
            batch.append(item)
            size += len(item[1].payload)
        return batch

    def _process(self, batch):
        """Ingest a batch, then PUBACK its messages in arrival order. A database that is down keeps every
        message unacknowledged and the batch is tried again every 2 s; nothing else stops it (R-5.2.2.4)."""
        generation = batch[0][0]
        batch = [b for b in batch if b[0] == generation]
        while True:
            try:
                close_old_connections()
                self._ingest_isolating(batch)
                break
            except Exception as exc:  # noqa: BLE001 - only a database that is down comes up to here
                log.warning("MQTT batch of %d messages not stored, the database is unavailable (%s: %s); "
                            "retrying in 2 s, nothing acknowledged", len(batch), type(exc).__name__, exc)
                if self._stop.wait(2) or generation != self.generation:
                    return  # stopping, or the connection dropped meanwhile: the broker will redeliver
        if generation == self.generation:
            for _gen, msg, _t in batch:
                if msg.qos > 0:
                    self.client.ack(msg.mid, msg.qos)

    def _ingest_isolating(self, batch):
        """``_ingest(batch)``; on a failure that is not the database's, the halves on their own, down to the
        message at fault, which is kept as an E5204 rejection. A database that is down raises."""
        try:
            self._ingest(batch)
        except Exception as exc:  # noqa: BLE001 - sorted below
            if database_unavailable(exc):
                raise
            if len(batch) == 1:
                self._keep_unprocessable(batch[0][1], exc)
                return
            log.warning("MQTT batch of %d messages failed (%s); storing its halves apart to find the message "
                        "at fault", len(batch), type(exc).__name__)
            half = len(batch) // 2
            self._ingest_isolating(batch[:half])
            self._ingest_isolating(batch[half:])

    def _keep_unprocessable(self, msg, exc: BaseException) -> None:
        parsed = parse_topic(msg.topic)
        source_id = parsed[1] if parsed else ""
        self.unprocessable += 1
        log.error("MQTT message on %s could not be processed; kept as rejection E5204 and acknowledged",
                  msg.topic[:200], exc_info=exc)
        refusal = unprocessable(msg.payload, exc, source_id)
        refusal.params["topic"] = msg.topic[:200]
        try:
            ingest_readings([], channel="mqtt", actor=self.label, refused=[refusal])
        except Exception as again:  # noqa: BLE001 - the last resort: the log keeps the message
            if database_unavailable(again):
                raise
            log.critical("MQTT message on %s could not even be kept as a rejection (%s); acknowledged, its "
                         "payload (base64) is: %s", msg.topic[:200], type(again).__name__,
                         base64.b64encode(msg.payload).decode())

    def _ingest(self, batch):
        """One transaction of readings and refusals for the batch's data messages; status reports and
        command acks applied one by one before it (each idempotent, so a retry may apply them again)."""
        cfg = current_config()
        now = timezone.now()
        records, refused, sealed = [], [], set()
        for _gen, msg, _t in batch:
            parsed = parse_topic(msg.topic)
            if parsed is None:
                text, raw_bytes = raw_of(msg.payload)
                refused.append(Refusal(text, errors.E5203, {"topic": msg.topic[:200]}, raw_bytes=raw_bytes))
                continue
            park_code, source_id, kind = parsed
            src = cfg.sources.get(source_id)
            if src is not None and cfg.parks[src.park_id].code != park_code:
                text, raw_bytes = raw_of(msg.payload)
                refused.append(Refusal(text, errors.E2003, {"source": source_id}, source_id, raw_bytes=raw_bytes))
                continue
            try:
                if kind in ("data", "tlv"):
                    got: Decoded = decode(msg.payload, kind="tlv" if kind == "tlv" else "json", cfg=cfg, now=now,
                                          source_id=source_id, max_size=self.max_payload)
                    if got.sealed:
                        sealed.update(range(len(records), len(records) + len(got.records)))
                    records.extend(got.records)
                    refused.extend(got.refusals)
                else:
                    self._apply_control(source_id, kind, msg.payload)
            except Exception as exc:  # noqa: BLE001 - one message's failure is that message's rejection
                if database_unavailable(exc):
                    raise
                self.unprocessable += 1
                log.error("MQTT message on %s could not be processed; kept as rejection E5204",
                          msg.topic[:200], exc_info=exc)
                refused.append(unprocessable(msg.payload, exc, source_id))
        if records or refused:
            ingest_readings(records, channel="mqtt", actor=self.label, refused=refused, sealed=frozenset(sealed),
                            now=now)

    def _apply_control(self, source_id: str, kind: str, payload: bytes) -> None:
        from apps.sources.models import DataSource
        from apps.sources.services.commands import record_ack
        from apps.sources.services.health import apply_status_report

        if kind == "status":
            apply_status_report(source_id=source_id, payload=payload)  # online/offline, a gateway's device health
            return
        source = DataSource.objects.filter(source_id=source_id).select_related("park").first()
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            body = None
        if source is None or not isinstance(body, dict):
            log.warning("command ack from %s ignored: %r", source_id, payload[:100])
            return
        record_ack(source=source, payload=body)

    def _dispatch_commands(self):
        from apps.sources.services.commands import dispatch_pending

        def publish(topic: str, payload: bytes) -> bool:
            info = self.client.publish(topic, payload, qos=1)
            info.wait_for_publish(timeout=5)
            return info.is_published()

        try:
            close_old_connections()
            dispatch_pending(publish)
        except Exception:  # noqa: BLE001 - a failed dispatch is retried on the next tick
            log.exception("publishing downlink commands failed; will retry")

