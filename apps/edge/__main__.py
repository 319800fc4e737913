"""carbonpark-edge [run|status|check] --config /etc/carbonpark-edge/edge.toml (also: python -m apps.edge …)"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys

from .agent import Agent
from .config import ConfigError, load

DEFAULT_CONFIG = "/etc/carbonpark-edge/edge.toml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="carbonpark-edge", description="CarbonPark edge agent")
    parser.add_argument("command", nargs="?", default="run", choices=("run", "status", "check"),
                        help="run the agent (default); status: pending, last acknowledged and per-device state "
                             "from the buffer; check: validate the configuration")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"path of edge.toml (default {DEFAULT_CONFIG})")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--check", action="store_true", help="validate the configuration and exit (= check)")
    parser.add_argument("--json", action="store_true", help="status: as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if args.check or args.command == "check":
        print("configuration OK")
        return 0
    if args.command == "status":
        from .status import collect, render

        report = collect(config)
        sys.stdout.write(json.dumps(report, ensure_ascii=False, indent=2) + "\n" if args.json else render(report))
        return 0
    agent = Agent(config)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, agent.stop)
        loop.add_signal_handler(signal.SIGHUP, agent.reload)
        await agent.run()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
