"""The one outbound HTTP helper of third-party integration (callbacks, health probes): connect ≤ 30 s and
read ≤ 60 s (R-8.1.2.2), TLS 1.2 or later with the certificate verified (R-7.4.1.1, R-7.4.4.1), every call
timed."""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import lru_cache

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter


class _Tls12Adapter(HTTPAdapter):
    """requests' adapter with an SSL context that refuses anything older than TLS 1.2 (and verifies, as default)."""

    def init_poolmanager(self, *args, **kwargs):
        context = ssl.create_default_context()
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        kwargs["ssl_context"] = context
        return super().init_poolmanager(*args, **kwargs)


@lru_cache(maxsize=1)
def _session() -> requests.Session:
    session = requests.Session()
    session.mount("https://", _Tls12Adapter())
    session.trust_env = False  # no proxy or CA bundle from the environment slipping in
    return session


@dataclass
class Answer:
    status: int | None  # None: no HTTP answer (refused, timed out, TLS failure)
    ms: int
    error: str = ""
    retry_after: float | None = None
    body: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def timeouts() -> tuple[float, float]:
    return (min(settings.OUTBOUND_CONNECT_TIMEOUT_S, 30.0), min(settings.OUTBOUND_READ_TIMEOUT_S, 60.0))


def retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


def call(method: str, url: str, *, body: bytes | None = None, headers: dict | None = None) -> Answer:
    """One HTTP call, timed; never raises for the network's failures (they come back as ``status=None``)."""
    started = time.monotonic()
    try:
        r = _session().request(method, url, data=body, headers=headers, timeout=timeouts(), verify=True,
                               allow_redirects=False, stream=True)
        content = r.raw.read(64 * 1024, decode_content=True) if r.raw is not None else b""
        r.close()
        return Answer(r.status_code, int((time.monotonic() - started) * 1000),
                      retry_after=retry_after(r.headers.get("Retry-After")), body=content or b"")
    except requests.RequestException as exc:
        return Answer(None, int((time.monotonic() - started) * 1000), error=f"{type(exc).__name__}: {exc}"[:300])
