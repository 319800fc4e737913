"""Downlink commands (R-5.3.1, interfaces §2): ``set_interval``, ``poll_now`` and ``resend``, answered on
``…/cmd/ack``; a redelivered ``cmdId`` (QoS 1) gets the same answer without running again."""
from __future__ import annotations

import datetime as dt
import json
import logging
from zoneinfo import ZoneInfo

from .config import MAX_INTERVAL_S, MIN_INTERVAL_S
from .publisher import topic

log = logging.getLogger("apps.edge.agent")


def parse_ts(value, tz: ZoneInfo) -> int:
    """Milliseconds since the epoch from an int (ms), a record timestamp (park time) or ISO 8601 with offset."""
    if isinstance(value, bool):
        raise ValueError("not a timestamp")
    if isinstance(value, int | float):
        return int(value)
    moment = dt.datetime.fromisoformat(str(value).strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return int(round(moment.timestamp() * 1000))


class CommandsMixin:
    """The Agent's command handling (runs on the agent's loop)."""

    def _on_command(self, topic_name: str, payload: bytes) -> None:
        parts = topic_name.split("/")
        source = parts[2] if len(parts) == 4 else ""
        cmd_id = None
        try:
            cmd = json.loads(payload)
            if not isinstance(cmd, dict):
                raise ValueError("a command is a JSON object")
            cmd_id = cmd.get("cmdId")
            if cmd_id is not None and cmd_id in self._recent_cmds:  # redelivered (QoS 1): same answer again
                result, message = self._recent_cmds[cmd_id]
            else:
                result, message = self._execute(source, cmd)
        except (ValueError, TypeError, KeyError) as exc:
            result, message = "error", str(exc)
        if cmd_id is not None:
            self._recent_cmds[cmd_id] = (result, message)
            while len(self._recent_cmds) > 200:
                self._recent_cmds.popitem(last=False)
        log.info("command %s for %s: %s %s", cmd_id, source, result, message)
        self.publisher.publish(topic(self.park, source, "cmd/ack"),
                               json.dumps({"cmdId": cmd_id, "result": result, "message": message}))

    def _execute(self, source: str, cmd: dict) -> tuple[str, str]:
        if source not in self.devices:
            return "error", f"unknown source {source}"
        kind = cmd.get("type")
        params = cmd.get("params") or {}
        if not isinstance(params, dict):
            return "error", "params must be an object"
        expires = cmd.get("expiresAt")
        if expires and parse_ts(expires, self.tz) < dt.datetime.now(dt.UTC).timestamp() * 1000:
            return "error", "expired"
        if kind == "set_interval":
            seconds = params.get("seconds")
            if isinstance(seconds, bool) or not isinstance(seconds, int):
                return "error", "params.seconds must be an integer"
            if not MIN_INTERVAL_S <= seconds <= MAX_INTERVAL_S:
                return "error", f"seconds must be {MIN_INTERVAL_S}-{MAX_INTERVAL_S}"
            self.set_interval(source, seconds)
            return "ok", f"interval {seconds} s"
        if kind == "poll_now":
            self._poll_now[source] = True
            self._wake[source].set()
            return "ok", "polling"
        if kind == "resend":
            if "from" not in params or "to" not in params:
                return "error", "params.from and params.to are required"
            start, end = parse_ts(params["from"], self.tz), parse_ts(params["to"], self.tz)
            if start > end:
                return "error", "from is after to"
            n = self.buffer.requeue(source, start, end)
            self._wake_sender.set()
            return "ok", f"{n} readings queued for resend"
        return "error", f"unsupported command type {kind!r}"

    def set_interval(self, source: str, seconds: int) -> None:
        self.intervals[source] = seconds
        self.buffer.set_state(f"interval:{source}", str(seconds))
        base = self._last_poll.get(source, self.clock.now_ms())
        self._due[source] = base + seconds * 1000
        self._wake[source].set()
