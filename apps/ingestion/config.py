"""What ingestion needs to know of parks, sources, the catalog and the rule library, compiled into
plain dictionaries once per configuration version, so that a batch costs one small query before
its writes. Services bump the version on every change (apps.core.services.bump_config_version);
each process reloads at its next batch: no restart (R-9.2.3)."""

from __future__ import annotations

import threading
import zoneinfo
from dataclasses import dataclass, field

from apps.core.errors import ErrorCode
from apps.core.selectors import config_version
from apps.quality.rules import KINDS


@dataclass(slots=True)
class ItemInfo:
    pk: int
    code: str
    data_type: str
    unit: str
    precision: str
    active: bool
    park_id: int | None
    enum_lookup: dict[str, str] = field(default_factory=dict)
    enum_codes: tuple[str, ...] = ()


@dataclass(slots=True)
class SourceInfo:
    pk: int
    source_id: str
    park_id: int
    enabled: bool
    items: dict[str, ItemInfo]
    only_item: ItemInfo | None
    encryption_required: bool = False


@dataclass(slots=True)
class KeyInfo:
    """A key that may decrypt now (interfaces.md §5): its owner and its 32 bytes, in memory only."""

    key_id: str
    source_pk: int | None
    park_id: int | None
    material: bytes = field(repr=False)
    until: object = None  # a retired key's end of grace, checked when used


@dataclass(slots=True)
class ParkInfo:
    pk: int
    code: str
    tz: zoneinfo.ZoneInfo


@dataclass(slots=True)
class CompiledRule:
    pk: int
    name: str
    park_id: int | None
    source_pk: int | None
    item_pk: int | None
    severity: str
    error: ErrorCode
    message_zh: str
    message_en: str
    kind: object
    params: dict


@dataclass
class IngestConfig:
    version: int
    parks: dict[int, ParkInfo]
    sources: dict[str, SourceInfo]
    items: dict[str, ItemInfo]
    rules: list[CompiledRule]
    keys: dict[str, KeyInfo] = field(default_factory=dict)
    _checks: dict = field(default_factory=dict)
    _source_ids: dict | None = None

    def source_id_of(self, pk: int) -> str | None:
        """A source's ID from its primary key (built once per version: envelopes name keys, not sources)."""
        if self._source_ids is None:
            self._source_ids = {s.pk: s.source_id for s in self.sources.values()}
        return self._source_ids.get(pk)

    def checks_for(self, park_id: int, source_pk: int, item: ItemInfo) -> tuple:
        """The compiled checks that apply to one (source, item), memoized for this version."""
        key = (source_pk, item.pk)
        found = self._checks.get(key)
        if found is None:
            found = []
            for r in self.rules:
                if ((r.park_id is None or r.park_id == park_id) and (r.source_pk is None or r.source_pk == source_pk)
                        and (r.item_pk is None or r.item_pk == item.pk)):
                    check = r.kind.compile(r.params, item)
                    if check is not None:
                        found.append((r, check))
            found = tuple(found)
            self._checks[key] = found
        return found


def load_config(version: int) -> IngestConfig:
    from apps.accounts.models import Park
    from apps.catalog.models import DataItem, EnumValue
    from apps.quality.models import Rule
    from apps.sources.models import DataSource

    parks = {p.pk: ParkInfo(p.pk, p.code, zoneinfo.ZoneInfo(p.time_zone)) for p in Park.objects.all()}
    enum_values: dict[int, list[EnumValue]] = {}
    for ev in EnumValue.objects.all():
        enum_values.setdefault(ev.enumeration_id, []).append(ev)
    items: dict[str, ItemInfo] = {}
    by_pk: dict[int, ItemInfo] = {}
    for it in DataItem.objects.all():
        info = ItemInfo(it.pk, it.code, it.data_type, it.unit, it.precision, it.is_active, it.park_id)
        if it.enumeration_id:
            values = enum_values.get(it.enumeration_id, [])
            info.enum_codes = tuple(v.code for v in values)
            for v in values:
                # A value may be sent as its code or its label in either language; its code is stored.
                for spelling in (v.code, v.label_zh, v.label_en):
                    if spelling:
                        info.enum_lookup[spelling] = v.code
        items[it.code] = info
        by_pk[it.pk] = info
    bound: dict[int, dict[str, ItemInfo]] = {}
    through = DataSource.data_items.through
    for source_pk, item_pk in through.objects.values_list("datasource_id", "dataitem_id"):
        info = by_pk[item_pk]
        bound.setdefault(source_pk, {})[info.code] = info
    sources = {}
    for s in DataSource.objects.values("pk", "source_id", "park_id", "enabled", "encryption_required"):
        its = bound.get(s["pk"], {})
        sources[s["source_id"]] = SourceInfo(s["pk"], s["source_id"], s["park_id"], s["enabled"], its,
                                             next(iter(its.values())) if len(its) == 1 else None,
                                             s["encryption_required"])
    rules = []
    for r in Rule.objects.filter(enabled=True):
        kind = KINDS.get(r.kind)
        if kind is None or kind.stage != "ingest":
            continue
        rules.append(CompiledRule(r.pk, r.name, r.park_id, r.source_id, r.data_item_id, r.severity, kind.error,
                                  r.message_zh, r.message_en, kind, r.params or {}))
    from apps.sources.services.keys import decryption_keys

    keys = {kid: KeyInfo(kid, spk, ppk, material, until)
            for kid, (spk, ppk, material, until) in decryption_keys().items()}
    return IngestConfig(version, parks, sources, items, rules, keys)


_lock = threading.Lock()
_current: IngestConfig | None = None


def current_config() -> IngestConfig:
    """The compiled configuration, reloaded when a service has bumped the version. Version 0 means
    nothing was ever bumped (a fresh or flushed database): then nothing is cached."""
    return config_at(config_version())


def cached_config() -> IngestConfig | None:
    """The configuration compiled last in this process, its version unchecked: ingest_readings reads the version
    in its own transaction (apps.ingestion.store.open_batch) and calls config_at when it differs."""
    return _current


def config_at(version: int) -> IngestConfig:
    """The compiled configuration of ``version`` (as just read from the database), compiled again when the
    one held is of another version, or when the version is 0."""
    global _current
    cfg = _current
    if cfg is None or cfg.version != version or version == 0:
        with _lock:
            if _current is None or _current.version != version or version == 0:
                _current = load_config(version)
            cfg = _current
    return cfg
