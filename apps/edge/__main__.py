"""python -m apps.edge --config edge.toml"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from .agent import Agent
from .config import ConfigError, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m apps.edge", description="CarbonPark edge agent")
    parser.add_argument("--config", required=True, help="path of edge.toml")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--check", action="store_true", help="validate the configuration and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        print("configuration OK")
        return 0
    agent = Agent(config)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, agent.stop)
        await agent.run()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
