"""The audit browser's reads (R-7.3.2, R-9.3.2.3): row versions (django-simple-history) and action records
(apps.core AuditEntry) as one timeline, per park and per object, filtered by who, what, when and park, and
scoped through the access seam (Action.AUDIT). Read-only: nothing here writes except ``record_export``.

One page costs a constant number of queries whatever its length: one for the action records, two per
history-tracked model (its versions, and the versions before them for the "what changed" column) and one
for the parks' codes. Pages follow each other by a cursor (time, source, id), never by OFFSET, so the
thousandth page costs what the first does.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from django.apps import apps as django_apps
from django.db.models import OuterRef, Q, Subquery
from django.utils.translation import gettext_lazy as _

from apps.accounts import access
from apps.accounts.access import Action

VERSION_ACTIONS = {"+": "version.created", "~": "version.changed", "-": "version.deleted"}
LABEL_FIELDS = ("code", "source_id", "name", "name_zh", "username")
HIDDEN_FIELDS = {"digest", "password"}  # a token's key digest: not for the browser or an export
ACTIONS_RANK = 0


@dataclass(frozen=True)
class HistorySource:
    """One history-tracked model: its historical model, how a version reaches its park, and its place in
    the timeline's order (``rank``)."""

    label: str  # the tracked model's label, e.g. "sources.datasource" (what AuditEntry.object_type holds)
    model: type
    historical: type
    park_field: str  # "park" (a foreign key's id in park_id) or "id" (the park itself)
    rank: int
    fields: tuple[str, ...]
    label_fields: tuple[str, ...]  # text fields that name a version (code, source_id, name …)

    @property
    def verbose_name(self):
        return self.model._meta.verbose_name


@lru_cache(maxsize=1)
def history_sources() -> tuple[HistorySource, ...]:
    """Every model with django-simple-history whose park the access seam knows (its registry path is the
    park itself or a direct ``park`` foreign key). Each historical model is registered in the seam with
    the same path, so its versions are scoped like the rows they are versions of."""
    found = []
    for model in django_apps.get_models():
        manager = getattr(model._meta, "simple_history_manager_attribute", None)
        label = model._meta.label_lower
        spec = access.PARK_PATHS.get(label)
        if not manager or spec is None or spec.path not in ("pk", "park"):
            continue
        historical = getattr(model, manager).model
        park_field = "id" if spec.path == "pk" else "park"
        access.register(historical, park_field, shared=spec.shared)
        concrete = [f for f in historical._meta.concrete_fields if not f.name.startswith("history_")]
        fields = tuple(f.attname for f in concrete if f.attname != "id" and f.name not in HIDDEN_FIELDS)
        texts = {f.name for f in concrete if not f.is_relation and f.get_internal_type() in ("CharField", "TextField")}
        found.append((label, model, historical, park_field, fields, tuple(n for n in LABEL_FIELDS if n in texts)))
    found.sort(key=lambda item: item[0])
    return tuple(HistorySource(*item[:4], rank, *item[4:]) for rank, item in enumerate(found, start=1))


def object_types() -> list[tuple[str, str]]:
    """(label, verbose name) of the history-tracked models, for the browser's "object type" choice."""
    return [(s.label, str(s.verbose_name)) for s in history_sources()]


@dataclass
class TimelineFilter:
    who: str = ""  # part of a user name or actor label
    what: str = ""  # part of an action name (e.g. "membership", "auth.login", "version.changed")
    text: str = ""  # part of the object's name, id or the reason
    object_type: str = ""  # a model label, exactly
    object_id: str = ""  # with object_type: one object's timeline
    park: str = ""  # a park code; "" every park the principal may audit
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def as_dict(self) -> dict:
        return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in self.__dict__.items() if v}


@dataclass
class TimelineRow:
    kind: str  # "action" or "version"
    at: dt.datetime
    rank: int
    id: int
    who: str
    action: str
    object_type: str
    object_id: str
    object_repr: str
    park_code: str
    changes: list = field(default_factory=list)  # [(field, before, after)]
    reason: str = ""
    hash: str = ""
    prev_hash: str = ""
    seq: int | None = None

    @property
    def cursor(self) -> str:
        return f"{self.at.isoformat()}|{self.rank}|{self.id}"

    @property
    def details(self) -> str:
        return "; ".join(f"{name}: {_short(old)} → {_short(new)}" for name, old, new in self.changes)


def _short(value) -> str:
    if value is None:
        return "∅"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:79] + "…"


def parse_cursor(cursor: str | None) -> tuple[dt.datetime, int, int] | None:
    if not cursor:
        return None
    try:
        at, rank, pk = cursor.rsplit("|", 2)
        return dt.datetime.fromisoformat(at), int(rank), int(pk)
    except ValueError:
        return None


def _before_cursor(time_field: str, rank: int, cursor) -> Q:
    """Rows after ``cursor`` in the order (time desc, rank desc, id desc)."""
    if cursor is None:
        return Q()
    at, c_rank, c_id = cursor
    earlier = Q(**{f"{time_field}__lt": at})
    if rank < c_rank:
        return earlier | Q(**{time_field: at})
    if rank == c_rank:
        pk = "id" if rank == ACTIONS_RANK else "history_id"
        return earlier | Q(**{time_field: at, f"{pk}__lt": c_id})
    return earlier


def _park_ids_for(code: str) -> list[int]:
    from apps.accounts.models import Park

    return list(Park.objects.filter(code=code).values_list("pk", flat=True))


def _actions(principal, f: TimelineFilter, cursor, limit: int, actions: tuple[Action, ...]) -> list[TimelineRow]:
    from apps.core.models import AuditEntry

    qs = AuditEntry.objects.all()
    for action in actions:
        qs = access.restrict(qs, principal, action)
    if f.who:
        qs = qs.filter(actor_label__icontains=f.who)
    if f.what:
        qs = qs.filter(action__icontains=f.what)
    if f.text:
        qs = qs.filter(Q(object_repr__icontains=f.text) | Q(reason__icontains=f.text) | Q(object_id=f.text))
    if f.object_type:
        qs = qs.filter(object_type=f.object_type)
    if f.object_id:
        qs = qs.filter(object_id=f.object_id)
    if f.park:
        qs = qs.filter(park_code=f.park)
    if f.since:
        qs = qs.filter(at__gte=f.since)
    if f.until:
        qs = qs.filter(at__lt=f.until)
    qs = qs.filter(_before_cursor("at", ACTIONS_RANK, cursor)).order_by("-at", "-id")[:limit]
    rows = []
    for e in qs:
        changes = []
        before, after = e.before or {}, e.after or {}
        if isinstance(before, dict) and isinstance(after, dict):
            for name in dict.fromkeys([*before, *after]):
                if before.get(name) != after.get(name) or name not in before:
                    changes.append((name, before.get(name), after.get(name)))
        rows.append(TimelineRow("action", e.at, ACTIONS_RANK, e.pk, e.actor_label, e.action, e.object_type,
                                e.object_id, e.object_repr, e.park_code, changes, e.reason, e.hash, e.prev_hash,
                                e.seq))
    return rows


def _version_matches(f: TimelineFilter) -> list[str] | None:
    """The history types (+ ~ -) whose action name contains ``f.what``; None: no filter."""
    if not f.what:
        return None
    return [t for t, name in VERSION_ACTIONS.items() if f.what.lower() in name]


def _versions(principal, source: HistorySource, f: TimelineFilter, cursor, limit: int,
              actions: tuple[Action, ...]) -> list[TimelineRow]:
    if f.object_type and f.object_type != source.label:
        return []
    types = _version_matches(f)
    if types == []:
        return []
    qs = source.historical.objects.all()
    for action in actions:
        qs = access.restrict(qs, principal, action)
    if types:
        qs = qs.filter(history_type__in=types)
    if f.who:
        qs = qs.filter(history_user__username__icontains=f.who)
    if f.text:
        text_q = Q(history_change_reason__icontains=f.text)
        for name in source.label_fields:
            text_q |= Q(**{f"{name}__icontains": f.text})
        if f.text.isdigit():
            text_q |= Q(id=int(f.text))
        qs = qs.filter(text_q)
    if f.object_id:
        if not f.object_id.isdigit():
            return []
        qs = qs.filter(id=int(f.object_id))
    if f.park:
        qs = qs.filter(**{f"{source.park_field}__in": _park_ids_for(f.park)})
    if f.since:
        qs = qs.filter(history_date__gte=f.since)
    if f.until:
        qs = qs.filter(history_date__lt=f.until)
    previous = (source.historical.objects.filter(id=OuterRef("id"), history_id__lt=OuterRef("history_id"))
                .order_by("-history_id").values("history_id")[:1])
    qs = (qs.filter(_before_cursor("history_date", source.rank, cursor)).select_related("history_user")
          .annotate(previous_id=Subquery(previous)).order_by("-history_date", "-history_id")[:limit])
    versions = list(qs)
    prev_ids = [v.previous_id for v in versions if v.previous_id and v.history_type == "~"]
    previous_rows = {row["history_id"]: row for row in
                     source.historical.objects.filter(history_id__in=prev_ids).values("history_id", *source.fields)
                     } if prev_ids else {}
    rows = []
    for v in versions:
        values = {name: getattr(v, name) for name in source.fields}
        old = previous_rows.get(v.previous_id)
        if v.history_type == "+":
            changes = [(n, None, val) for n, val in values.items() if val not in (None, "")]
        elif v.history_type == "-":
            changes = []
        elif old is not None:
            changes = [(n, old[n], val) for n, val in values.items() if old[n] != val]
        else:
            changes = []
        label = next((str(values[n]) for n in source.label_fields if values.get(n)), f"#{v.id}")
        park_id = v.id if source.park_field == "id" else values.get("park_id")
        rows.append(TimelineRow("version", v.history_date, source.rank, v.history_id,
                                v.history_user.get_username() if v.history_user_id else "",
                                VERSION_ACTIONS[v.history_type], source.label, str(v.id),
                                f"{source.verbose_name} {label}", park_id or "",
                                [(n, _plain(a), _plain(b)) for n, a, b in changes],
                                v.history_change_reason or ""))
    return rows


def _plain(value):
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, int | float | str | bool | list | dict) or value is None:
        return value
    return str(value)


@dataclass
class TimelinePage:
    rows: list[TimelineRow]
    next_cursor: str | None


def timeline(principal, f: TimelineFilter, *, cursor: str | None = None, limit: int = 50,
             actions: tuple[Action, ...] = (Action.AUDIT,)) -> TimelinePage:
    """One page of the merged timeline, newest first, from the parks where ``principal`` may do every one
    of ``actions`` (R-7.3.2: history visible to auditors, scoped per park, R-7.3.3)."""
    from apps.accounts.models import Park

    position = parse_cursor(cursor)
    rows = _actions(principal, f, position, limit + 1, actions)
    for source in history_sources():
        rows.extend(_versions(principal, source, f, position, limit + 1, actions))
    rows.sort(key=lambda r: (r.at, r.rank, r.id), reverse=True)
    more = len(rows) > limit
    rows = rows[:limit]
    park_ids = {r.park_code for r in rows if isinstance(r.park_code, int)}
    if park_ids:
        codes = dict(Park.objects.filter(pk__in=park_ids).values_list("pk", "code"))
        for r in rows:
            if isinstance(r.park_code, int):
                r.park_code = codes.get(r.park_code, str(r.park_code))
    return TimelinePage(rows, rows[-1].cursor if more and rows else None)


def iter_timeline(principal, f: TimelineFilter, *, batch: int = 1000, cap: int | None = None,
                  actions: tuple[Action, ...] = (Action.AUDIT, Action.EXPORT)) -> Iterator[TimelineRow]:
    """Every row of the timeline, newest first, in pages of ``batch`` (exports)."""
    cursor, sent = None, 0
    while True:
        page = timeline(principal, f, cursor=cursor, limit=batch, actions=actions)
        for row in page.rows:
            if cap is not None and sent >= cap:
                return
            sent += 1
            yield row
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


EXPORT_COLUMNS = [
    ("at", _("time")), ("kind", _("record")), ("who", _("who")), ("action", _("action")),
    ("object_type", _("object type")), ("object_id", _("object id")), ("object_repr", _("object")),
    ("park_code", _("park")), ("details", _("changes")), ("reason", _("reason")), ("seq", _("position in chain")),
    ("prev_hash", _("previous record's hash")), ("hash", _("hash")),
]


def export_values(row: TimelineRow, tz) -> list:
    values = []
    for name, _label in EXPORT_COLUMNS:
        value = getattr(row, name)
        if name == "at":
            value = value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S.%f")
        values.append("" if value is None else value)
    return values
