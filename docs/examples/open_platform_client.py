#!/usr/bin/env python3
"""A minimal client of the CarbonPark open API (interfaces.md §6), standard library only: copy it and adapt.

    python open_platform_client.py https://park.example APP_ID SECRET CO010101

Signs in (/open/auth: HMAC-SHA256 of app_id + timestamp + nonce), subscribes to the data codes given
(/open/subscribe), pushes one record (/open/data, with an Idempotency-Key, so a retry is never stored twice),
and shows how to check a callback's Standard Webhooks signature. See docs/third-party-platforms.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import sys
import time
import urllib.error
import urllib.request
import uuid


class OpenClient:
    def __init__(self, base_url: str, app_id: str, secret: str):
        self.base = base_url.rstrip("/") + "/api/v1/open"
        self.app_id, self.secret = app_id, secret
        self.token, self.expires_at = None, 0.0

    def _post(self, path: str, body: dict, headers: dict | None = None) -> tuple[int, dict, dict]:
        data = json.dumps(body, ensure_ascii=False).encode()
        req = urllib.request.Request(self.base + path, data=data, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read() or b"{}"), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}"), dict(e.headers)

    def sign_in(self) -> None:
        ts, nonce = str(int(time.time())), secrets.token_hex(16)  # a fresh nonce every time
        signature = hmac.new(self.secret.encode(), f"{self.app_id}{ts}{nonce}".encode(), hashlib.sha256).hexdigest()
        status, body, _ = self._post("/auth", {"app_id": self.app_id, "timestamp": ts, "nonce": nonce,
                                               "signature": signature})
        if status != 200:
            raise RuntimeError(f"auth refused: {status} {body}")
        self.token, self.expires_at = body["token"], time.time() + body["expiresIn"] - 60

    def call(self, path: str, body: dict, headers: dict | None = None) -> tuple[int, dict]:
        for _ in range(5):
            if not self.token or time.time() > self.expires_at:
                self.sign_in()
            status, answer, h = self._post(path, body, {"Authorization": f"Bearer {self.token}", **(headers or {})})
            if status == 401 and answer.get("code") == "E7405":  # token expired: sign in again
                self.token = None
                continue
            if status == 429:  # rate limit: wait as told
                time.sleep(int(h.get("Retry-After", "5")))
                continue
            return status, answer
        raise RuntimeError("gave up")

    def subscribe(self, codes: list[str], frequency: str = "", callback_url: str = "") -> dict:
        body = {"dataCodes": codes, "frequency": frequency}
        if callback_url:
            body["callbackUrl"] = callback_url
        status, answer = self.call("/subscribe", body)
        if status != 200:
            raise RuntimeError(f"subscribe refused: {status} {answer}")
        return answer

    def push(self, topic_code: str, records: list[dict], key: str | None = None) -> tuple[int, dict]:
        """200: all accepted; 400: ``rejected`` lists each bad record by index with its code (the others are
        stored); 5xx: retry later with the same key."""
        return self.call("/data", {"topic_code": topic_code, "records": records},
                         {"Idempotency-Key": key or str(uuid.uuid4())})


def verify_webhook(secret: str, headers: dict, body: bytes, tolerance: int = 300) -> bool:
    """Check a callback from the park (Standard Webhooks): webhook-signature is v1,<base64 HMAC-SHA256 of
    "webhook-id.webhook-timestamp.body"> keyed with your secret; refuse stale timestamps."""
    h = {k.lower(): v for k, v in headers.items()}
    if abs(time.time() - int(h["webhook-timestamp"])) > tolerance:
        return False
    signed = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, s) for s in h["webhook-signature"].split())


if __name__ == "__main__":
    base_url, app_id, secret, *codes = sys.argv[1:]
    client = OpenClient(base_url, app_id, secret)
    sub = client.subscribe(codes or ["CO010101"], frequency="monthly")
    print("topic", sub["topic_code"], "rate limit", sub["template"]["rateLimit"])
    record = dict(sub["template"]["record"], timestamp=time.strftime("%Y-%m-%d %H:%M:%S"))
    key = str(uuid.uuid4())
    print(client.push(sub["topic_code"], [record], key))
    print(client.push(sub["topic_code"], [record], key))  # the same key and body: answered again, stored once
