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


def serve(port: int) -> int:
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
