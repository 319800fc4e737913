"""Run device simulators (issue #4: tests and the demo): a Modbus TCP meter, a DL/T 645 meter behind a
TCP gateway, an OPC UA server, and an HJ 212 monitoring station that connects to the platform's
listener. ``simulate all`` runs every one, on the ports the embedded run command chose."""

import asyncio
import contextlib
import os
import signal

from django.core.management.base import BaseCommand, CommandError

DEMO_DLT645_ADDRESS = "000102030425"
DEMO_HJ212_MN = "88888880000001"


def _env_port(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


class Command(BaseCommand):
    help = "Run device simulators: modbus | dlt645 | opcua | hj212 | all"

    def add_arguments(self, parser):
        parser.add_argument("which", choices=["modbus", "dlt645", "opcua", "hj212", "all"])
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=0, help="listen port (hj212: the listener's port)")
        parser.add_argument("--units", type=int, default=2, help="Modbus unit ids 1..N")
        parser.add_argument("--interval", type=float, default=60.0, help="hj212: seconds between uploads")
        parser.add_argument("--mn", default=DEMO_HJ212_MN, help="hj212: the station's MN")

    def handle(self, *args, which, host, port, units, interval, mn, **options):
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(self._run(which, host, port, units, interval, mn))

    async def _run(self, which, host, port, units, interval, mn):
        from apps.protocols.simulators import dlt645_meter, modbus_meter
        from apps.protocols.simulators.opcua_server import OpcuaMeterServer

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        running, tasks = [], []
        if which in ("modbus", "all"):
            sim = await modbus_meter.start(host, port if which == "modbus" else
                                           _env_port("CARBONPARK_SIM_MODBUS_PORT", 0), units=units)
            running.append(sim)
            self.stdout.write(f"Modbus TCP meter simulator: {host}:{sim.port}, units 1..{units}")
        if which in ("dlt645", "all"):
            sim = await dlt645_meter.start(host, port if which == "dlt645" else
                                           _env_port("CARBONPARK_SIM_DLT645_PORT", 0),
                                           addresses=[DEMO_DLT645_ADDRESS])
            running.append(sim)
            self.stdout.write(f"DL/T 645 meter simulator (TCP gateway): {host}:{sim.port}, "
                              f"address {DEMO_DLT645_ADDRESS}")
        if which in ("opcua", "all"):
            ua_port = port if which == "opcua" else _env_port("CARBONPARK_SIM_OPCUA_PORT", 4840)
            server = OpcuaMeterServer(host, ua_port, meters=2, period=5.0)
            await server.start()
            running.append(server)
            self.stdout.write(f"OPC UA server simulator: {server.endpoint}")
        if which in ("hj212", "all"):
            target = port if which == "hj212" else _env_port("CARBONPARK_HJ212_PORT", 0)
            if not target:
                raise CommandError("hj212 needs --port (or CARBONPARK_HJ212_PORT): the listener to connect to")
            tasks.append(asyncio.create_task(self._station(host, target, mn, interval)))
            self.stdout.write(f"HJ 212 station {mn} → {host}:{target}, every {interval:g} s")
        await stop.wait()
        for task in tasks:
            task.cancel()
        for sim in running:
            await sim.stop()

    async def _station(self, host, port, mn, interval):
        from apps.protocols.simulators import hj212_station

        while True:  # the listener may start after us, or restart: keep reconnecting
            try:
                await hj212_station.simulate(host, port, mn, interval=interval)
            except (TimeoutError, OSError) as exc:
                self.stderr.write(f"HJ 212 station: {exc}; retrying in 5 s")
                await asyncio.sleep(5)
