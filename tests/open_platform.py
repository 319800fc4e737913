"""Helpers of the third-party platform tests: a registered platform and a signing client, as an integrator
would write it (docs/examples/open_platform_client.py signs the same way)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time

from rest_framework.test import APIClient

from apps.accounts.access import SystemPrincipal
from apps.integrations.services import register_platform
from tests.conftest import make_uscc

ROOT = SystemPrincipal("test")


def new_platform(park, *, whitelist=("127.0.0.1/32",), **extra):
    fields = {"name": "Green cert hub", "uscc": make_uscc("91110000MA01GRN0X"), "base_url": "https://hub.example",
              "ip_whitelist": list(whitelist), "alert_email": "ops@hub.example", "certified": True} | extra
    return register_platform(actor=ROOT, park=park, **fields)


def signature(secret: str, app_id: str, ts: str, nonce: str) -> str:
    return hmac.new(secret.encode(), f"{app_id}{ts}{nonce}".encode(), hashlib.sha256).hexdigest()


class OpenClient:
    def __init__(self, platform, secret, ip="127.0.0.1"):
        self.platform, self.secret, self.ip = platform, secret, ip
        self.http = APIClient(REMOTE_ADDR=ip)
        self.token = None

    def auth_body(self, *, ts=None, nonce=None, secret=None):
        ts = str(int(time.time())) if ts is None else ts
        nonce = nonce or secrets.token_hex(8)
        return {"app_id": self.platform.app_id, "timestamp": ts, "nonce": nonce,
                "signature": signature(secret or self.secret, self.platform.app_id, ts, nonce)}

    def auth(self, body=None):
        r = self.http.post("/api/v1/open/auth", body or self.auth_body(), format="json")
        if r.status_code == 200:
            self.token = r.json()["token"]
        return r

    def post(self, path, body, **headers):
        extra = {"HTTP_AUTHORIZATION": f"Bearer {self.token}"} if self.token else {}
        extra |= {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
        raw = body if isinstance(body, bytes) else json.dumps(body)
        return self.http.post(path, raw, content_type="application/json", **extra)

    def subscribe(self, codes, **more):
        return self.post("/api/v1/open/subscribe", {"dataCodes": codes, **more})

    def push(self, topic, records, key=None):
        return self.post("/api/v1/open/data", {"topic_code": topic, "records": records},
                         **({"Idempotency-Key": key} if key else {}))
