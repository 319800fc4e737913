"""What the open API keeps in Redis, shared by every web worker: the rate limit per app_id (the maintained
``limits`` package, moving window), used nonces, bearer tokens and failed pushes (R-7.4.1.3, R-7.4.2.2,
R-7.4.3.1, R-7.4.3.2)."""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from functools import lru_cache

import redis
from django.conf import settings
from limits import RateLimitItemPerMinute
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

PREFIX = "cp:open:"


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


def client() -> redis.Redis:
    return _client(settings.REDIS_URL)


@lru_cache(maxsize=4)
def _limiter(url: str) -> MovingWindowRateLimiter:
    return MovingWindowRateLimiter(RedisStorage(url, key_prefix=PREFIX + "rate"))


@lru_cache(maxsize=64)
def _item(per_minute: int) -> RateLimitItemPerMinute:
    return RateLimitItemPerMinute(per_minute)


def limit_of(platform) -> int:
    """Requests per minute for ``platform``: its own override, else OPEN_RATE_LIMIT_PER_MIN (published in the
    subscribe answer and docs/third-party-platforms.md)."""
    return platform.rate_limit or settings.OPEN_RATE_LIMIT_PER_MIN


def hit(app_id: str, per_minute: int) -> int:
    """Count one request of ``app_id``; 0 when allowed, else the seconds to wait (the Retry-After)."""
    limiter = _limiter(settings.REDIS_URL)
    item = _item(per_minute)
    if limiter.hit(item, app_id):
        return 0
    reset, _remaining = limiter.get_window_stats(item, app_id)
    return max(1, math.ceil(reset - time.time()))


def claim_nonce(app_id: str, nonce: str) -> bool:
    """True the first time ``nonce`` is seen for ``app_id``. Kept past the timestamp window, after which a replay
    is refused for its timestamp anyway: a nonce is never accepted twice."""
    ttl = 2 * settings.OPEN_AUTH_WINDOW_S + 60
    return bool(client().set(f"{PREFIX}nonce:{app_id}:{nonce}", 1, nx=True, ex=ttl))


def _token_key(token: str) -> str:
    return PREFIX + "token:" + hashlib.sha256(token.encode()).hexdigest()


def issue_token(platform_id: int) -> tuple[str, int]:
    """A bearer token for the platform, valid OPEN_TOKEN_TTL_S; only its digest is a key in Redis."""
    token = "cpo_" + secrets.token_urlsafe(32)
    ttl = settings.OPEN_TOKEN_TTL_S
    client().set(_token_key(token), platform_id, ex=ttl)
    return token, ttl


def token_platform(token: str) -> int | None:
    value = client().get(_token_key(token))
    return int(value) if value is not None else None


def count_push_failure(app_id: str) -> int:
    """Record a failed push now; the failed pushes of the last hour."""
    key = f"{PREFIX}pushfail:{app_id}"
    now = time.time()
    pipe = client().pipeline()
    pipe.zadd(key, {f"{now:.6f}:{secrets.token_hex(4)}": now})
    pipe.zremrangebyscore(key, 0, now - 3600)
    pipe.zcard(key)
    pipe.expire(key, 3700)
    return int(pipe.execute()[2])


def forget_push_failures(app_id: str) -> None:
    client().delete(f"{PREFIX}pushfail:{app_id}")
