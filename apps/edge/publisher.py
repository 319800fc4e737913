"""MQTT side: one paho connection per agent, MQTT 5, QoS 1, Last Will on the gateway's status topic, TLS for mqtts://.

MQTT 5 because a broker may refuse a publish (its ACL): Mosquitto then answers PUBACK with reason code 135
"Not authorized", which ``on_puback(mid, reason_code)`` passes on so that the agent keeps the readings. Under
MQTT 3.1.1 the same refusal is a plain PUBACK, indistinguishable from success (eclipse-mosquitto#2579): the
data would be lost silently. ``protocol = 4`` is left only for brokers without MQTT 5.

paho's own reconnect is off; ``Publisher.run`` (its own thread) applies the policy of R-5.2.2.7 / R-8.3.2:
after a failure or a dropped connection, retry every 5 s for 10 attempts, then back off exponentially
(10 s, 20 s, 40 s ... capped at 300 s) until connected, logging every failure. A fresh paho client is made
per attempt, so nothing paho held in memory is resent behind the agent's back: the disk buffer is the only
source of retransmission.
"""
from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from .config import ConfigError, Platform

log = logging.getLogger("apps.edge.publisher")

SESSION_EXPIRY_S = 7 * 86400  # the command subscription outlives a reboot of the gateway (MQTT 5 session)


@dataclass(frozen=True)
class ReconnectPolicy:
    fast_delay_s: float = 5.0
    fast_attempts: int = 10
    backoff_base_s: float = 10.0
    backoff_cap_s: float = 300.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before reconnect attempt number ``attempt`` (1, 2, ...) of the current outage."""
        if attempt <= self.fast_attempts:
            return self.fast_delay_s
        return min(self.backoff_cap_s, self.backoff_base_s * 2 ** (attempt - self.fast_attempts - 1))


def topic(park: str, source_id: str, leaf: str) -> str:
    return f"carbonpark/{park}/{source_id}/{leaf}"


class Publisher:
    """Thread-side MQTT connection. Callbacks run on the publisher thread:
    ``on_connected()``, ``on_disconnected()``, ``on_puback(mid, reason_code)`` (0 = delivered; >= 0x80 = the
    broker refused it), ``on_message(topic, payload)``."""

    def __init__(self, platform: Platform, *, sources: list[str], on_connected: Callable[[], None],
                 on_disconnected: Callable[[], None], on_puback: Callable[[int, int], None],
                 on_message: Callable[[str, bytes], None], policy: ReconnectPolicy | None = None,
                 sleep: Callable[[float], object] | None = None, online_payload: Callable[[str], dict] | None = None,
                 gateway_payload: Callable[[], dict] | None = None,
                 refused: Callable[[], frozenset[str]] | None = None,
                 on_status_refused: Callable[[str, int], None] | None = None) -> None:
        self.platform = platform
        self.sources = sources
        self.on_connected, self.on_disconnected = on_connected, on_disconnected
        self.on_puback, self.on_message = on_puback, on_message
        self.policy = policy or ReconnectPolicy()
        self._stop = threading.Event()
        self.sleep = sleep or self._stop.wait
        self.online_payload = online_payload or (lambda _source: {"state": "online"})
        self.gateway_payload = gateway_payload or (lambda: {"state": "online"})
        # sources the broker refuses: no status is published for them (Mosquitto drops the connection after
        # a denied publish, so a status refused on every connect would make the whole gateway flap)
        self.refused = refused or frozenset
        self.on_status_refused = on_status_refused or (lambda _source, _code: None)
        self._status_mids: dict[int, str] = {}
        self._skip_delay = False
        self.client: mqtt.Client | None = None
        self._connected = False
        self._lock = threading.Lock()
        self._ended = threading.Event()
        self.thread: threading.Thread | None = None
        self.attempts = 0  # failed attempts in the current outage
        self.gateway_status = topic(platform.park, platform.client_id, "status")

    # lifecycle -----------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name="edge-mqtt", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Graceful: every status topic says offline, then a clean DISCONNECT (no Will)."""
        self._stop.set()
        with self._lock:
            client, connected = self.client, self._connected
        if client is not None and connected:
            infos = [client.publish(topic(self.platform.park, s, "status"), json.dumps({"state": "offline"}),
                                    qos=1, retain=True)
                     for s in [*self._status_sources(), self.platform.client_id]]
            for info in infos:
                try:
                    info.wait_for_publish(timeout=2.0)
                except (RuntimeError, ValueError):
                    break
            client.disconnect()
        elif client is not None:
            client.disconnect()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def reconnect(self) -> None:
        """SIGHUP: drop the connection and connect again at once with a new client, which re-reads the
        password file and the certificate files (renewed certificates, a rotated password)."""
        self._skip_delay = True
        with self._lock:
            client = self.client
        if client is not None:
            client.disconnect()

    def run(self) -> None:
        first = True
        while not self._stop.is_set():
            if not first and self._skip_delay:
                self._skip_delay = False
                log.info("reconnecting to %s now (reload)", self.platform.mqtt_url)
            elif not first:
                self.attempts += 1
                delay = self.policy.delay(self.attempts)
                log.info("reconnecting to %s in %.0f s (attempt %d)", self.platform.mqtt_url, delay, self.attempts)
                self.sleep(delay)
                if self._stop.is_set():
                    break
            first = False
            self._got_connack = False
            try:
                client = self._make_client()
                kwargs = {}
                if self.platform.protocol == 5:
                    props = Properties(PacketTypes.CONNECT)
                    props.SessionExpiryInterval = SESSION_EXPIRY_S
                    kwargs = {"clean_start": False, "properties": props}
                client.connect(self.platform.host, self.platform.port, self.platform.keepalive, **kwargs)
            except Exception as exc:  # noqa: BLE001 - every connect failure is logged and retried
                log.warning("connect to %s failed (attempt %d): %s", self.platform.mqtt_url, self.attempts, exc)
                continue
            with self._lock:
                self.client = client
            # paho's own network thread (loop_start), so that publishes from other threads are queued to it
            # rather than written to the (TLS) socket concurrently; with reconnect_on_failure=False that thread
            # ends with the connection.
            self._ended.clear()
            client.loop_start()
            paho_thread = getattr(client, "_thread", None)
            while not self._ended.wait(0.5):
                if paho_thread is None or not paho_thread.is_alive():
                    break
            client.loop_stop()
            was_connected = self._got_connack
            with self._lock:
                self.client, self._connected = None, False
            if was_connected:
                log.warning("connection to %s lost", self.platform.mqtt_url)
                self.on_disconnected()
            elif not self._stop.is_set():
                log.warning("connect to %s failed (attempt %d): %s", self.platform.mqtt_url, self.attempts,
                            getattr(self, "_refusal", "no CONNACK"))

    # publishing ----------------------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected

    def publish(self, topic_name: str, payload: str | bytes, *, retain: bool = False) -> int | None:
        """QoS 1 publish; the mid whose PUBACK ``on_puback`` will report, or None when not connected."""
        with self._lock:
            client = self.client if self._connected else None
        if client is None:
            return None
        info = client.publish(topic_name, payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return None
        return info.mid

    # paho ----------------------------------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        p = self.platform
        v5 = p.protocol == 5
        client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=p.client_id,
                             protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311, clean_session=None if v5 else False,
                             reconnect_on_failure=False)
        client.max_inflight_messages_set(100)
        client.max_queued_messages_set(0)
        client.will_set(self.gateway_status, json.dumps({"state": "offline"}), qos=1, retain=True)
        if p.username is not None:
            try:
                password = p.read_password()
            except ConfigError as exc:  # e.g. the file was made world-readable since: refuse to use it
                raise ConnectionRefusedError(f"credentials: {exc}") from None
            client.username_pw_set(p.username, password)
        if p.tls:
            context = ssl.create_default_context(cafile=p.ca_file)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            if p.cert_file:
                context.load_cert_chain(p.cert_file, p.key_file)
            client.tls_set_context(context)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = lambda _c, _u, mid, rc, _props: self._on_publish(mid, _reason_value(rc))
        client.on_message = lambda _c, _u, msg: self.on_message(msg.topic, msg.payload)
        return client

    def _on_connect(self, client, _userdata, _flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            self._refusal = f"refused: {reason_code}"
            client.disconnect()
            return
        log.info("connected to %s as %s", self.platform.mqtt_url, self.platform.client_id)
        self._got_connack = True
        self.attempts = 0
        for source in self.sources:
            client.subscribe(topic(self.platform.park, source, "cmd"), qos=1)
        self._status_mids.clear()
        for source in self._status_sources():
            info = client.publish(topic(self.platform.park, source, "status"), json.dumps(self.online_payload(source)),
                                  qos=1, retain=True)
            self._status_mids[info.mid] = source
        client.publish(self.gateway_status, json.dumps(self.gateway_payload()), qos=1, retain=True)
        with self._lock:
            self._connected = True
        self.on_connected()

    def _status_sources(self) -> list[str]:
        refused = self.refused()
        return [s for s in self.sources if s not in refused]

    def _on_publish(self, mid: int, reason_code: int) -> None:
        source = self._status_mids.pop(mid, None)
        if source is not None:
            if reason_code >= 0x80:
                self.on_status_refused(source, reason_code)
            return
        self.on_puback(mid, reason_code)

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        with self._lock:
            self._connected = False
        self._ended.set()


def _reason_value(reason_code) -> int:
    """The PUBACK's reason code as an int (paho gives a ReasonCode; MQTT 3.1.1 has none: success)."""
    value = getattr(reason_code, "value", reason_code)
    return int(value) if isinstance(value, int) else 0
