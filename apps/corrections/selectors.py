"""THE effective value of a reading (ARCHITECTURE.md rule 1, R-9.3.2.3): its latest revision, else the value
stored at ingest. Every reader that means "the value" gets it from here: the readings API and CSV export
(apps/ingestion/selectors.py), the portal's readings browser, and SQL readers (rollups) through
``effective_value_sql`` or the view ``corrections_effective_reading`` (migration corrections 0002).

One index probe per reading, (source_id, data_item_id, ts, id DESC) INCLUDE (value): the revision's id and
value come back together as one array, so a page pays one probe per row, not two."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db.models import FloatField, QuerySet
from django.db.models.expressions import RawSQL

from apps.accounts import access
from apps.accounts.access import Action
from apps.corrections.models import Correction

# [revision id, value, flags] of the latest revision of the reading in ``{t}`` (a table or alias), or NULL.
LATEST_REVISION = (
    "(SELECT ARRAY[v.id::float8, v.value, v.flags::float8] FROM corrections_revision v "
    "WHERE v.source_id = {t}.source_id AND v.data_item_id = {t}.data_item_id AND v.ts = {t}.ts "
    "ORDER BY v.id DESC LIMIT 1)"
)
REVISION_ANNOTATION = "eff_revision"


def effective_value_sql(alias: str = "r") -> str:
    """An SQL expression for the effective value of the reading row ``alias`` (for rollups and exports
    written in SQL): ``corrections_effective_value(source_id, data_item_id, ts, value)``."""
    return f"corrections_effective_value({alias}.source_id, {alias}.data_item_id, {alias}.ts, {alias}.value)"


def effective_join_sql(reading: str = "r", alias: str = "rv", where: str = "true") -> str:
    """A LEFT JOIN giving each reading row ``reading`` its latest revision as ``alias`` (``alias.value``,
    ``alias.id``): set-based, for aggregates over many readings (rollups), where one probe per row costs more
    than one pass over the revisions. ``where`` narrows the revisions read (e.g. ``"rv.source_id = %s"``);
    the effective value is then ``coalesce(rv.value, r.value)``."""
    return (f"LEFT JOIN (SELECT DISTINCT ON (source_id, data_item_id, ts) source_id, data_item_id, ts, id, value "
            f"FROM corrections_revision {alias} WHERE {where} ORDER BY source_id, data_item_id, ts, id DESC) {alias} "
            f"ON {alias}.source_id = {reading}.source_id AND {alias}.data_item_id = {reading}.data_item_id "
            f"AND {alias}.ts = {reading}.ts")


def with_latest_revision(qs: QuerySet) -> QuerySet:
    """Readings annotated with ``eff_revision``: [revision id, new value, its flags], or None when never
    revised."""
    table = qs.model._meta.db_table
    return qs.annotate(**{REVISION_ANNOTATION: RawSQL(LATEST_REVISION.format(t=f'"{table}"'), (),
                                                       output_field=ArrayField(FloatField()))})


def only_revised(qs: QuerySet, revised: bool = True) -> QuerySet:
    """Readings with (or without) a revision: the ``corrected`` flag is not stored on the reading (readings are
    never updated), it is this."""
    from django.db.models import Exists, OuterRef

    from apps.corrections.models import Revision

    has = Exists(Revision.objects.filter(source_id=OuterRef("source_id"), data_item_id=OuterRef("data_item_id"),
                                         ts=OuterRef("ts")))
    return qs.filter(has if revised else ~has)


CORRECTED, REPAIRED, PATCHED = 32, 8, 16  # apps.ingestion.models.Flag


def effective_flags(stored_flags: int, revision) -> int:
    """The flags of the effective value, from the stored reading's and the ``eff_revision`` annotation (R-9.3.1,
    R-9.3.2.1, R-9.3.2.2): a correction adds "corrected", a repair "repaired" to the stored bits; a real reading
    that replaced a fill has its own flags (the fill's "patched" belongs to the value stored, not to this one)."""
    if revision is None:
        return stored_flags
    bits = int(revision[2]) if len(revision) > 2 and revision[2] is not None else CORRECTED
    if bits & (CORRECTED | REPAIRED):
        return stored_flags | (bits & (CORRECTED | REPAIRED))
    return bits


def split(raw_value, revision) -> tuple[object, int | None]:
    """(effective value, revision id) from the stored value and the ``eff_revision`` annotation."""
    if revision is None:
        return raw_value, None
    return revision[1], int(revision[0])


def corrections_for(principal, action: Action = Action.VIEW) -> QuerySet[Correction]:
    """The corrections ``principal`` may see (R-9.3.2.2), newest first."""
    return access.restrict(Correction.objects.select_related("park", "source", "data_item"), principal, action)


def awaiting(principal) -> QuerySet[Correction]:
    """Requests ``principal`` may decide: in parks where it approves, never its own (R-9.3.2.3)."""
    qs = access.restrict(Correction.objects.filter(state=Correction.State.REQUESTED), principal, Action.APPROVE)
    if getattr(principal, "pk", None) is not None and getattr(principal, "token", None) is None:
        qs = qs.exclude(requested_by_id=principal.pk)
    return qs
