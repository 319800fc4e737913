"""The embedded default's MQTT broker: amqtt (pure Python, MQTT 3.1.1) on loopback. Production uses Mosquitto
or EMQX (deploy/mosquitto/). Kept apart from carbonpark/embedded.py, which settings.py imports: amqtt is
loaded only by the broker's own process."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

from amqtt.broker import Broker
from amqtt.plugins.base import BaseAuthPlugin


class LoopbackAuth(BaseAuthPlugin):
    """Every loopback client is let in and counts as identified. amqtt keeps no queued QoS 1 messages for
    the persistent session (clean session 0) of an *anonymous* client, so with its AnonymousAuthPlugin the
    readings published while the MQTT consumer restarted were acknowledged to the devices and then dropped;
    MQTT 3.1.1 §3.1.2.4 says the session keeps them."""

    @dataclass
    class Config:
        pass

    async def authenticate(self, *, session) -> bool:
        session.is_anonymous = False
        return True


def keep_unacknowledged_deliveries() -> None:
    """amqtt 0.12 forgets a QoS 1 message sent to a subscriber as soon as its PUBACK is late (5 s) or the
    subscriber's connection drops: the MQTT consumer, SIGKILLed between receiving a batch and acknowledging
    it (it acknowledges after the commit), never got those messages again and they were lost. MQTT 3.1.1
    §4.4 says the session keeps them and sends them again when the client reconnects. These two wrappers
    make amqtt do so: an unacknowledged message goes back into the session's in-flight list (amqtt resends
    that list, marked DUP, when the session resumes), and a late PUBACK takes it out. The consumer stores by
    identity, so a resent message is never stored twice. tests/test_run_faults.py holds the behaviour."""
    from amqtt.mqtt.protocol.handler import ProtocolHandler
    from amqtt.session import OUTGOING

    if getattr(ProtocolHandler, "_carbonpark_keeps_deliveries", False):
        return
    qos1_flow, puback = ProtocolHandler._handle_qos1_message_flow, ProtocolHandler.handle_puback

    async def _handle_qos1_message_flow(self, app_message):
        try:
            return await qos1_flow(self, app_message)
        except BaseException as exc:
            if (app_message.direction == OUTGOING and app_message.puback_packet is None
                    and app_message.packet_id is not None and self.session is not None):
                self.session.inflight_out[app_message.packet_id] = app_message
                if isinstance(exc, TimeoutError):  # amqtt logged the late PUBACK; kept, so no traceback
                    return None
            raise

    async def handle_puback(self, packet):
        packet_id = packet.variable_header.packet_id if packet.variable_header else None
        if packet_id not in self._puback_waiters and self.session is not None:
            late = self.session.inflight_out.pop(packet_id, None)
            if late is not None:
                late.puback_packet = packet
                return None
        return await puback(self, packet)

    ProtocolHandler._handle_qos1_message_flow = _handle_qos1_message_flow
    ProtocolHandler.handle_puback = handle_puback
    ProtocolHandler._carbonpark_keeps_deliveries = True


def serve(port: int) -> int:
    keep_unacknowledged_deliveries()
    config = {"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
              "plugins": {f"{__name__}.LoopbackAuth": {}}}

    async def main():
        broker = Broker(config)
        await broker.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        # Deliveries still in flight to clients that have gone fail with tracebacks while it shuts down.
        logging.getLogger("amqtt").setLevel(logging.CRITICAL)
        await broker.shutdown()

    asyncio.run(main())
    return 0
