"""Payload decoding shared by the channels: the CPE1 envelope (interfaces.md §5), JSON and TLV
(§4), and the rule that a device speaks only for itself (§2: the topic names the source)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from apps.core.errors import ErrorCode
from apps.ingestion import errors
from apps.ingestion.codecs import envelope, tlv
from apps.ingestion.config import IngestConfig

MAX_PAYLOAD = 1024 * 1024
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


def raw_repr(payload: bytes, limit: int = 4000) -> str:
    try:
        return payload[:limit].decode("utf-8")
    except UnicodeDecodeError:
        return "hex:" + payload[: limit // 2].hex()


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


def _records_from_json(body: bytes):
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = json.loads(body)  # NaN / Infinity reach the record checks (E2008); garbage raises ValueError
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        return data
    raise ValueError("not a record or an array of records")


def decode(payload: bytes, *, kind: str, cfg: IngestConfig, now: datetime, source_id: str | None = None,
           max_size: int = MAX_PAYLOAD) -> Decoded:
    """One message or body → records (interfaces.md §1) and refusals. ``kind`` "json" or "tlv"
    (the topic's; an envelope's content type takes precedence). ``source_id``: the topic's source,
    when there is one: records may omit it, and may not name another."""
    out = Decoded()
    raw = raw_repr(payload)
    if len(payload) > max_size:
        out.refusals.append(Refusal(raw[:200], errors.E5201, {"size": len(payload), "limit": max_size},
                                    source_id or ""))
        return out
    src = cfg.sources.get(source_id) if source_id else None
    if envelope.is_envelope(payload):
        try:
            payload, content_type, sealed_for = open_sealed(payload, cfg, source_id=source_id, now=now)
        except envelope.EnvelopeError as exc:
            err = errors.E5102 if exc.code == "E5102" else ENVELOPE_ERRORS.get(exc.code, errors.E5101)
            out.refusals.append(Refusal(raw, err, {"detail": exc.detail, "key_id": exc.detail}, source_id or ""))
            return out
        out.sealed = True
        source_id = source_id or sealed_for
        kind = "tlv" if content_type == envelope.CONTENT_TLV else "json"
    elif src is not None and src.encryption_required:
        out.refusals.append(Refusal(raw, errors.E5104, {"source": source_id}, source_id))
        return out
    if kind == "tlv":
        for item in tlv.decode_frame(payload):
            if isinstance(item, tlv.TlvError):
                out.refusals.append(Refusal(raw, TLV_ERRORS.get(item.code, errors.E5003),
                                            {"index": item.index, "detail": item.detail}, source_id or ""))
            else:
                out.records.append(tlv.to_reading(item))
    else:
        try:
            out.records = _records_from_json(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            from apps.core.errors import E1001

            out.refusals.append(Refusal(raw, E1001, {"detail": str(exc)[:200]}, source_id or ""))
            return out
    if source_id is not None:
        kept = []
        for rec in out.records:
            if isinstance(rec, dict):
                sid = rec.setdefault("sourceId", source_id)
                if sid != source_id:
                    out.refusals.append(Refusal(json.dumps(rec, ensure_ascii=False, default=str)[:4000],
                                                errors.E5202, {"source": sid, "topic_source": source_id},
                                                str(sid)[:100], str(rec.get("dataCode", ""))[:40]))
                    continue
            kept.append(rec)
        out.records = kept
    return out
