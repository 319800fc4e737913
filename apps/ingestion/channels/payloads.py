"""Payload decoding shared by the channels: the CPE1 envelope (interfaces.md §5), JSON and TLV
(§4), and the rule that a device speaks only for itself (§2: the topic names the source)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from apps.core.errors import ErrorCode
from apps.core.text import bytes_to_text
from apps.ingestion import errors
from apps.ingestion.config import IngestConfig
from apps.protocols.codecs import envelope, tlv

MAX_PAYLOAD = 1024 * 1024
# Records are flat (interfaces.md §1): an array of objects of scalars is 2 levels deep. The bound keeps a
# hostile payload from reaching recursive code (json, the rule checks, the rejection's raw text).
MAX_JSON_DEPTH = 32
TLV_ERRORS = {"E5001": errors.E5001, "E5002": errors.E5002, "E5003": errors.E5003, "E5004": errors.E5004}
ENVELOPE_ERRORS = {"E5101": errors.E5101, "E5103": errors.E5103, "E5105": errors.E5105}


@dataclass
class Refusal:
    """Something refused before it became a record: kept with its raw content and code."""

    raw: str
    error: ErrorCode
    params: dict = field(default_factory=dict)
    source_ref: str = ""
    data_code: str = ""
    raw_bytes: bytes | None = None  # the exact bytes, where ``raw`` cannot be them (see core.text)


@dataclass
class Decoded:
    records: list[dict] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    sealed: bool = False


def raw_of(payload: bytes, limit: int = 4000) -> tuple[str, bytes | None]:
    """A payload as a rejection keeps it: storable text and, when the text is not exactly the payload
    (binary, a NUL, cut at ``limit``), the exact bytes beside it (R-9.3.1)."""
    text, exact = bytes_to_text(payload, limit)
    return text, None if exact else bytes(payload)


def unprocessable(payload: bytes, exc: BaseException, source_id: str | None = "") -> Refusal:
    """E5204: a message that failed in a way no code foresaw, kept whole with the exception's class."""
    text, raw_bytes = raw_of(payload)
    return Refusal(text, errors.E5204, {"detail": type(exc).__name__}, source_id or "", raw_bytes=raw_bytes)


def open_sealed(payload: bytes, cfg: IngestConfig, *, source_id: str | None, now: datetime):
    """Decrypt a CPE1 payload: (plaintext, content type, the source id it was sealed for).
    ``source_id``: the sender's id when the channel knows it (MQTT topic); otherwise the key's owner.
    Raises envelope.EnvelopeError with a stable code."""
    env = envelope.parse(payload)
    key = cfg.keys.get(env.key_id)
    if key is None or (key.until is not None and key.until <= now):
        raise envelope.EnvelopeError("E5102", env.key_id)
    owner = cfg.source_id_of(key.source_pk) if key.source_pk else None
    bound_to = source_id or owner
    if bound_to is None or (owner is not None and source_id is not None and owner != source_id):
        # A key of another source: decrypting would only fail on the AAD anyway.
        raise envelope.EnvelopeError("E5103", "key belongs to another source")
    return envelope.open_envelope(env, key.material, bound_to), env.content_type, bound_to


class TooDeep(Exception):
    """JSON nested deeper than MAX_JSON_DEPTH (E5205)."""


def _depth_exceeds(data, limit: int) -> bool:
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for v in node.values() if type(node) is dict else node:
            if type(v) is dict or type(v) is list:
                stack.append((v, depth + 1))
    return False


def _check_depth(body: bytes, data, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise TooDeep when ``data`` (decoded from ``body``) nests deeper than ``limit``. Cheap for the usual
    shapes: every container of ``data`` has an opening bracket in ``body``, so the bracket count bounds
    the depth; only payloads that count more brackets than flat records can hold are walked."""
    if type(data) is not dict and type(data) is not list:
        return
    openers = body.count(b"{") + body.count(b"[")
    if openers <= limit:
        return
    if type(data) is list:
        # n of the top level's elements are containers: one of them holds at most openers - n.
        n = sum(1 for x in data if type(x) is dict or type(x) is list)
        if 1 + openers - n <= limit:
            return
    if _depth_exceeds(data, limit):
        raise TooDeep


def loads_json(body: bytes):
    """JSON (RFC 8259, plus NaN/Infinity, which reach the record checks as E2008) with its nesting bounded:
    ValueError for what is not JSON, TooDeep past MAX_JSON_DEPTH; never RecursionError."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc) or "recursion" in str(exc):
            raise TooDeep from None
        try:
            data = json.loads(body)
        except RecursionError:
            raise TooDeep from None
    _check_depth(body, data)
    return data


def _records_from_json(body: bytes):
    data = loads_json(body)
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        return data
    raise ValueError("not a record or an array of records")


def decode(payload: bytes, *, kind: str, cfg: IngestConfig, now: datetime, source_id: str | None = None,
           max_size: int = MAX_PAYLOAD) -> Decoded:
    """One message or body → records (interfaces.md §1) and refusals. ``kind`` "json" or "tlv"
    (the topic's; an envelope's content type takes precedence). ``source_id``: the topic's source,
    when there is one: records may omit it, and may not name another; refusals are filed under it.

    A refusal keeps the payload as storable text and, where that text is not exact, the payload's bytes
    (with the first refusal of the payload only: a frame with many bad records is kept once)."""
    out = Decoded()
    whole = payload  # as received: the envelope's, not its plaintext
    kept_raw: list = []  # (text, exact bytes or None) of the payload as received, made on the first refusal

    def refuse(error: ErrorCode, params: dict) -> None:
        raw_bytes = None
        if not kept_raw:
            kept_raw.append(raw_of(whole))
            raw_bytes = kept_raw[0][1]
        out.refusals.append(Refusal(kept_raw[0][0], error, params, source_id or "", raw_bytes=raw_bytes))

    if len(payload) > max_size:
        # Only its head is kept: storing what the size limit refuses would defeat the limit.
        text, _ = raw_of(payload, 200)
        out.refusals.append(Refusal(text, errors.E5201, {"size": len(payload), "limit": max_size}, source_id or ""))
        return out
    src = cfg.sources.get(source_id) if source_id else None
    if envelope.is_envelope(payload):
        try:
            payload, content_type, sealed_for = open_sealed(payload, cfg, source_id=source_id, now=now)
        except envelope.EnvelopeError as exc:
            err = errors.E5102 if exc.code == "E5102" else ENVELOPE_ERRORS.get(exc.code, errors.E5101)
            refuse(err, {"detail": exc.detail, "key_id": exc.detail})
            return out
        out.sealed = True
        source_id = source_id or sealed_for
        kind = "tlv" if content_type == envelope.CONTENT_TLV else "json"
    elif src is not None and src.encryption_required:
        refuse(errors.E5104, {"source": source_id})
        return out
    if kind == "tlv":
        for item in tlv.decode_frame(payload):
            if isinstance(item, tlv.TlvError):
                refuse(TLV_ERRORS.get(item.code, errors.E5003), {"index": item.index, "detail": item.detail})
            else:
                out.records.append(tlv.to_reading(item))
    else:
        try:
            out.records = _records_from_json(payload)
        except TooDeep:
            refuse(errors.E5205, {"limit": MAX_JSON_DEPTH})
            return out
        except (ValueError, UnicodeDecodeError) as exc:
            from apps.core.errors import E1001

            refuse(E1001, {"detail": str(exc)[:200]})
            return out
    if source_id is not None:
        kept = []
        for rec in out.records:
            if isinstance(rec, dict):
                sid = rec.setdefault("sourceId", source_id)
                if sid != source_id:
                    # Filed under the topic's source (the sender), not the one the record names (issue #7).
                    out.refusals.append(Refusal(json.dumps(rec, ensure_ascii=False, default=str)[:4000],
                                                errors.E5202, {"source": str(sid)[:100], "topic_source": source_id},
                                                source_id, str(rec.get("dataCode", ""))[:40]))
                    continue
            kept.append(rec)
        out.records = kept
    return out
