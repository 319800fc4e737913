"""The REST pull connector (R-7.1.1.2, R-7.4.1.1, R-8.1.2.2): pages of a third party's JSON answers, read from a
saved cursor (the API's next-page token, or a last-timestamp watermark) or over a window, each page turned into
reading records by the connector's field mapping.

Outbound HTTP: connect ≤ 30 s, read ≤ 60 s, TLS ≥ 1.2 with the certificate verified; 429 and 5xx answers are
retried after their ``Retry-After`` (capped), connection failures with a growing back-off; a run reads at most
``max_pages`` pages. The caller stores each page and only then moves the cursor (apps/pulls/services.py)."""

from __future__ import annotations

import json
import logging
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from apps.core.errors import CarbonParkError
from apps.pulls import errors
from apps.pulls.mapping import MISSING, MappingError, compile_mapping, map_record, parse_path, resolve

log = logging.getLogger("carbonpark.pulls")

CONNECT_MAX, READ_MAX = 30.0, 60.0  # R-8.1.2.2
DEFAULTS = {"method": "GET", "records": "", "next": "", "cursor_param": "cursor", "since_param": "",
            "from_param": "from", "to_param": "to", "page_size_param": "", "page_size": 500, "max_pages": 50,
            "auth": "none", "auth_header": "X-API-Key", "params": {}, "connect_timeout": 10.0, "read_timeout": 30.0,
            "retries": 3, "max_retry_after": 60.0, "backoff_seconds": 2.0, "max_bytes": 20 * 1024 * 1024,
            "ca_file": ""}
INT_DIGITS = 300  # longer integers become floats (inf when out of range): refused per record, never a crash


def _bad(detail: str):
    return CarbonParkError(errors.E7501, detail=detail[:300])


def check_settings(settings: dict, mapping: dict, *, allow_http: bool) -> dict:
    """The REST settings completed with defaults and checked; E7501 names what is wrong."""
    if not isinstance(settings, dict):
        raise _bad("settings must be a JSON object")
    unknown = sorted(set(settings) - set(DEFAULTS) - {"url"})
    if unknown:
        raise _bad(f"unknown settings {unknown}")
    cfg = {**DEFAULTS, **settings}
    url = cfg.get("url")
    if not isinstance(url, str) or "\x00" in url:
        raise _bad("url is required")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise _bad("url must be https://host/…")
    if parts.scheme == "http" and not allow_http:
        raise _bad("url must use https (TLS ≥ 1.2, R-8.1.2.2); plain http only with PULLS_ALLOW_PLAIN_HTTP")
    if cfg["method"] not in ("GET", "POST"):
        raise _bad("method is GET or POST")
    if cfg["auth"] not in ("none", "bearer", "header"):
        raise _bad("auth is none, bearer or header")
    for key in ("cursor_param", "since_param", "from_param", "to_param", "page_size_param", "auth_header",
                "ca_file"):
        if not isinstance(cfg[key], str) or "\x00" in cfg[key] or len(cfg[key]) > 200:
            raise _bad(f"{key} must be a short string")
    if not isinstance(cfg["params"], dict) or not all(isinstance(v, str | int | float) for v in cfg["params"].values()):
        raise _bad("params is an object of names to plain values")
    for key, low, high in (("page_size", 1, 10000), ("max_pages", 1, 10000), ("retries", 0, 10),
                           ("max_bytes", 1024, 100 * 1024 * 1024)):
        if not isinstance(cfg[key], int) or isinstance(cfg[key], bool) or not low <= cfg[key] <= high:
            raise _bad(f"{key} must be an integer from {low} to {high}")
    for key, high in (("connect_timeout", CONNECT_MAX), ("read_timeout", READ_MAX), ("max_retry_after", 3600.0),
                      ("backoff_seconds", 600.0)):
        value = cfg[key]
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= high:
            raise _bad(f"{key} must be a number of seconds above 0 and at most {high:g}")
    try:
        if cfg["records"]:
            parse_path(cfg["records"])
        if cfg["next"]:
            parse_path(cfg["next"])
        compile_mapping(mapping)
    except MappingError as exc:
        raise _bad(str(exc)) from None
    return cfg


class _Tls12Adapter(HTTPAdapter):
    """Certificates verified against the system's CAs (or ``ca_file``), nothing older than TLS 1.2."""

    def __init__(self, ca_file: str = ""):
        self._ca_file = ca_file or None
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        ctx = ssl.create_default_context(cafile=self._ca_file)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        kwargs["ssl_context"] = ctx
        return super().init_poolmanager(*args, **kwargs)


@dataclass
class Page:
    records: list[dict]  # mapped records, in the answer's order
    items: int  # items the answer held
    cursor: dict | None  # the cursor once this page is stored (None: a full pull never moves it)


def _parse_json(body: bytes):
    def big_int(text: str):
        return int(text) if len(text) <= INT_DIGITS else float(text)

    def no_constants(name: str):
        raise ValueError(f"{name} is not JSON")

    return json.loads(body, parse_int=big_int, parse_constant=no_constants)


def _retry_after(value: str | None, cap: float) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if seconds != seconds:  # NaN
        return None
    return max(0.0, min(seconds, cap))


def _timestamp_key(value) -> datetime | None:
    """A comparable time for the watermark, from a timestamp as the API wrote it (naive = the API's zone)."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        dt = datetime.fromisoformat(value.replace(" ", "T", 1))
    except ValueError:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


class RestPuller:
    """One run's pages. ``secret``: the bearer token or API key (opened only for the run)."""

    def __init__(self, cfg: dict, mapping: dict, secret: str, *, sleep=time.sleep):
        self.cfg = cfg
        self.specs = compile_mapping(mapping)
        self.secret = secret
        self.sleep = sleep
        self.target = urlsplit(cfg["url"]).netloc
        self.session = requests.Session()
        self.session.mount("https://", _Tls12Adapter(cfg["ca_file"]))
        self.session.trust_env = False  # no proxy or .netrc from the worker's environment

    def close(self):
        self.session.close()

    def _headers(self) -> dict:
        headers = {"Accept": "application/json", "User-Agent": "CarbonPark-pull/1"}
        if self.cfg["auth"] == "bearer":
            headers["Authorization"] = f"Bearer {self.secret}"
        elif self.cfg["auth"] == "header":
            headers[self.cfg["auth_header"]] = self.secret
        return headers

    def fetch(self, params: dict):
        """One page's JSON, after retries; E750x when it cannot be had."""
        cfg = self.cfg
        timeout = (min(cfg["connect_timeout"], CONNECT_MAX), min(cfg["read_timeout"], READ_MAX))
        attempts = cfg["retries"] + 1
        status = None
        for attempt in range(1, attempts + 1):
            wait = cfg["backoff_seconds"] * 2 ** (attempt - 1)
            try:
                kwargs = {"params": params} if cfg["method"] == "GET" else {"json": params}
                with self.session.request(cfg["method"], cfg["url"], headers=self._headers(), timeout=timeout,
                                          stream=True, allow_redirects=False, **kwargs) as resp:
                    status = resp.status_code
                    if status == 429 or status >= 500:
                        hinted = _retry_after(resp.headers.get("Retry-After"), cfg["max_retry_after"])
                        wait = hinted if hinted is not None else wait
                        log.warning("pull from %s: HTTP %s, attempt %d of %d, next in %.1f s", self.target, status,
                                    attempt, attempts, wait)
                    elif status != 200:
                        raise CarbonParkError(errors.E7504, target=self.target, status=status, attempts=attempt)
                    else:
                        body = self._read(resp)
                        try:
                            return _parse_json(body)
                        except (ValueError, RecursionError) as exc:
                            raise CarbonParkError(errors.E7506, target=self.target,
                                                  detail=f"not JSON ({str(exc)[:120]})") from None
            except requests.exceptions.SSLError as exc:
                raise CarbonParkError(errors.E7509, detail=str(exc)[:200]) from None
            except (requests.exceptions.ConnectTimeout, requests.exceptions.ReadTimeout):
                if attempt == attempts:
                    raise CarbonParkError(errors.E7505, target=self.target, connect=timeout[0],
                                          read=timeout[1]) from None
            except requests.exceptions.ConnectionError as exc:
                if attempt == attempts:
                    raise CarbonParkError(errors.E7503, target=self.target,
                                          detail=type(exc).__name__) from None
            if attempt < attempts:
                self.sleep(wait)
        raise CarbonParkError(errors.E7504, target=self.target, status=status, attempts=attempts)

    def _read(self, resp) -> bytes:
        limit = self.cfg["max_bytes"]
        chunks, size = [], 0
        for chunk in resp.iter_content(65536):
            size += len(chunk)
            if size > limit:
                raise CarbonParkError(errors.E7506, target=self.target, detail=f"answer larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def pages(self, cursor: dict | None, *, mode: str, window: tuple | None = None) -> Iterator[Page]:
        """The pages of one run, each with the cursor to save once it is stored. Incremental: from the saved
        next-page token, or the saved watermark (``since_param``); full: the window (``from_param``/
        ``to_param``), the cursor untouched."""
        cfg = self.cfg
        cursor = dict(cursor or {})
        base = dict(cfg["params"])
        if cfg["page_size_param"]:
            base[cfg["page_size_param"]] = cfg["page_size"]
        if mode == "full":
            start, end = window
            if start is not None:
                base[cfg["from_param"]] = start.isoformat()
            if end is not None:
                base[cfg["to_param"]] = end.isoformat()
        elif cfg["since_param"] and cursor.get("since"):
            base[cfg["since_param"]] = cursor["since"]
        token = cursor.get("token") if mode != "full" and not cfg["since_param"] else None
        records_path = parse_path(cfg["records"]) if cfg["records"] else ()
        next_path = parse_path(cfg["next"]) if cfg["next"] else ()
        for _page in range(cfg["max_pages"]):
            params = dict(base)
            if token:
                params[cfg["cursor_param"]] = token
            doc = self.fetch(params)
            items = resolve(doc, records_path) if records_path else doc
            if not isinstance(items, list):
                raise CarbonParkError(errors.E7506, target=self.target,
                                      detail=f"no list of records at {cfg['records'] or 'the top level'}")
            records = [map_record(item, self.specs) for item in items]
            nxt = resolve(doc, next_path) if next_path else MISSING
            nxt = nxt if isinstance(nxt, str | int) and not isinstance(nxt, bool) and str(nxt) else None
            if mode == "full":
                new_cursor = None
            elif cfg["since_param"]:
                new_cursor = self._advance_since(cursor, records)
            else:
                # the token that reads on from here; without one, this page's (read again next time, its records
                # then repeats of stored readings)
                new_cursor = {"token": str(nxt) if nxt is not None else token}
            yield Page(records, len(items), new_cursor)
            if new_cursor is not None:
                cursor = new_cursor
            if nxt is None or str(nxt) == token or not next_path:
                return
            token = str(nxt)

    def _advance_since(self, cursor: dict, records: list[dict]) -> dict:
        best = cursor.get("since")
        best_key = _timestamp_key(best)
        for r in records:
            key = _timestamp_key(r.get("timestamp"))
            if key is not None and (best_key is None or key > best_key):
                best, best_key = r["timestamp"], key
        return {"since": best}
