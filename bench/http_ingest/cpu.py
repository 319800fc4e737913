"""CPU accounting with psutil: our process groups, our PostgreSQL server, and whatever else ran."""

from __future__ import annotations

import contextlib
import os
import time

from .database import connect


class CpuProbe:
    """CPU seconds used by groups of processes between start() and stop(), plus the machine's."""

    def __init__(self, groups: dict):
        self.groups = groups  # name -> callable returning processes

    @staticmethod
    def _cpu(procs) -> dict:
        import psutil

        out = {}
        for p in procs:
            try:
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
            except psutil.Error:
                pass
        return out

    @staticmethod
    def _everything() -> dict:
        import psutil

        out = {}
        for p in psutil.process_iter(["name", "cpu_times"]):
            t = p.info["cpu_times"]
            if t is not None:
                out[p.pid] = (p.info["name"] or "?", t.user + t.system)
        return out

    def start(self):
        import psutil

        self.t0 = time.perf_counter()
        self.m0 = psutil.cpu_times()
        self.before = {g: self._cpu(f()) for g, f in self.groups.items()}
        self.all0 = self._everything()

    def stop(self) -> dict:
        import psutil

        wall = time.perf_counter() - self.t0
        m1 = psutil.cpu_times()
        all1 = self._everything()
        busy = lambda t: t.user + t.nice + t.system + t.irq + t.softirq + t.steal  # noqa: E731
        out = {"wall": wall, "machine": busy(m1) - busy(self.m0), "cores": psutil.cpu_count()}
        ours = {os.getpid(), *(c.pid for c in psutil.Process().children(recursive=True))}
        for g, f in self.groups.items():
            after = self._cpu(f())
            ours.update(after)
            out[g] = sum(v - self.before[g].get(pid, 0.0) for pid, v in after.items())
        # Whatever else ran meanwhile (other people's tests, browsers ...), by process name.
        foreign: dict[str, float] = {}
        for pid, (name, v) in all1.items():
            if pid not in ours:
                foreign[name] = foreign.get(name, 0.0) + v - self.all0.get(pid, (name, 0.0))[1]
        out["foreign"] = sorted(foreign.items(), key=lambda kv: -kv[1])[:3]
        return out


_POSTMASTER: list = []


def find_postmaster(url: str) -> None:
    """The server our DATABASE_URL reaches (other PostgreSQL servers on the machine are not ours)."""
    import psutil

    with connect(url) as conn:
        backend, dbname = conn.execute("SELECT pg_backend_pid(), current_database()").fetchone()
        try:  # while the backend lives: once the connection is closed it may be gone already
            _POSTMASTER[:] = [psutil.Process(backend).parent(), dbname]
        except psutil.Error:  # a server in a container or on another host: no PostgreSQL CPU figures
            _POSTMASTER[:] = []


def postgres_processes():
    """The postmaster, our database's backends, and the shared helpers (WAL writer, checkpointer ...);
    not the backends of other databases on the same server."""
    import psutil

    if not _POSTMASTER:
        return []
    pm, dbname = _POSTMASTER
    out = [pm]
    with contextlib.suppress(psutil.Error):
        for child in pm.children():
            with contextlib.suppress(psutil.Error):
                title = " ".join(child.cmdline())
                is_backend = "(" in title or "[local]" in title
                if not is_backend or f" {dbname} " in title:  # our backends and the shared helpers
                    out.append(child)
    return out


def machine_load(seconds: float = 1.0) -> float:
    """Share of the machine busy before we start: other people's work skews every figure."""
    import psutil

    return psutil.cpu_percent(interval=seconds) / 100
