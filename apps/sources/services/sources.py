"""Writes for data sources; audited, validated, and picked up by ingestion without a restart."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms.models import model_to_dict
from django.utils.translation import gettext as _

from apps.core.services import bump_config_version, record_change
from apps.sources.models import DataSource
from apps.sources.services.polling import sync_poll_schedule

SOURCE_FIELDS = ["source_id", "park", "name", "kind", "protocol", "collection_method", "expected_interval_s",
                 "enabled", "evidence_required", "manufacturer", "model", "serial_number", "location", "settings",
                 "gateway", "instrument_type", "accuracy_class"]


def _snapshot(source: DataSource) -> dict:
    data = model_to_dict(source, fields=SOURCE_FIELDS)
    data["data_codes"] = sorted(source.data_items.values_list("code", flat=True)) if source.pk else []
    return data


@transaction.atomic
def save_source(*, actor, source: DataSource | None = None, data_items=None, reason: str = "",
                **fields) -> DataSource:
    """Register or change a data source (R-5.2.3.2 d, interface registration and management).

    ``data_items``: the catalog items the source may report; each must be the standard's or the
    source's own park's."""
    before = _snapshot(source) if source and source.pk else None
    source = source or DataSource()
    for key, value in fields.items():
        setattr(source, key, value)
    source.full_clean(exclude=["data_items"])
    source.save()
    if data_items is None and before is not None and before["park"] != source.park_id:
        data_items = list(source.data_items.all())  # a move: the codes it keeps must suit its new park
    if data_items is not None:
        foreign = [i.code for i in data_items if i.park_id not in (None, source.park_id)]
        if foreign:
            raise ValidationError({"data_items": _("Codes %(codes)s belong to another park.") % {
                "codes": ", ".join(foreign)}})
        source.data_items.set(data_items)
    record_change(actor=actor, action="source.create" if before is None else "source.update", obj=source,
                  before=before, after=_snapshot(source), reason=reason, park_code=source.park.code)
    sync_poll_schedule(source)
    bump_config_version()
    return source
