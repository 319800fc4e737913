"""Writes to the catalog: the standard's Appendix A load and park-defined codes (R-6.3–6.5)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms.models import model_to_dict
from django.utils.translation import gettext as _

from apps.catalog import units
from apps.catalog.models import ITEM_CODE_RE, CatalogClass, DataItem, DataType, Enumeration
from apps.core.services import bump_config_version, record_change

DATA_DIR = Path(__file__).resolve().parent / "data"
ENUM_OF_ITEM = {"CS010104": "fuel_type", "CK010103": "vegetation_type", "CK010202": "soil_type"}
MAJOR_NAMES = {"CS": ("碳源", "Carbon sources"), "CK": ("碳汇", "Carbon sinks"), "CO": ("碳抵销", "Carbon offsets")}


def load_standard_catalog(class_model=CatalogClass, item_model=DataItem, enum_model=Enumeration) -> int:
    """Load the 37 data items of Tables 1–3 with their Appendix A codes, their classes and the
    enumerations (R-6.3, R-6.4, R-6.5). Idempotent: codes already present are updated in place.
    Takes model classes so that a data migration can pass its historical models."""
    for e in json.loads((DATA_DIR / "enumerations.json").read_text(encoding="utf-8")):
        enum, _created = enum_model.objects.update_or_create(
            code=e["code"], defaults={"name_zh": e["name_zh"], "name_en": e["name_en"]})
        for order, (code, zh, en) in enumerate(e["values"]):
            enum.values.update_or_create(code=code, defaults={"label_zh": zh, "label_en": en, "order": order})
    for code, (zh, en) in MAJOR_NAMES.items():
        class_model.objects.update_or_create(code=code, defaults={"level": "major", "name_zh": zh, "name_en": en})
    count = 0
    with open(DATA_DIR / "catalog.csv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            code = row["code"]
            middle, _m = class_model.objects.update_or_create(
                code=code[:4], defaults={"level": "middle", "parent_id": code[:2],
                                         "name_zh": row["middle_zh"], "name_en": row["middle_en"]})
            minor, _n = class_model.objects.update_or_create(
                code=code[:6], defaults={"level": "minor", "parent_id": middle.code,
                                         "name_zh": row["minor_zh"], "name_en": row["minor_en"]})
            enum = enum_model.objects.get(code=ENUM_OF_ITEM[code]) if code in ENUM_OF_ITEM else None
            item_model.objects.update_or_create(code=code, defaults={
                "minor": minor, "table": int(row["table"]), "section": row["section"],
                "name_zh": row["name_zh"], "name_en": row["name_en"], "data_type": row["data_type"],
                "unit": row["unit"], "precision": row["precision"], "methods": row["methods"].split(";"),
                "basis": row["basis"], "default_frequency": row["default_frequency"], "enumeration": enum,
            })
            count += 1
    return count


ITEM_FIELDS = ["code", "name_zh", "name_en", "data_type", "unit", "precision", "methods", "basis",
               "default_frequency", "enumeration", "evidence_required", "is_active", "park"]


def validate_item_code(code: str, *, park=None) -> None:
    """Appendix A structure: CS|CK|CO + middle + minor + indicator, and every parent level exists."""
    if not re.fullmatch(ITEM_CODE_RE, code or ""):
        raise ValidationError({"code": _("A data code is 8 characters: CS, CK or CO followed by six digits, "
                                         "e.g. CS010201.")})
    missing = [c for c in (code[:2], code[:4], code[:6]) if not CatalogClass.objects.filter(code=c).exists()]
    if missing:
        raise ValidationError({"code": _("Create the parent classes first: %(codes)s.") % {
            "codes": ", ".join(missing)}})


@transaction.atomic
def save_catalog_class(*, actor, code: str, name_zh: str, name_en: str = "", park=None) -> CatalogClass:
    """Add a park-defined middle or minor class (Appendix A: parks may add codes in the same structure)."""
    if not re.fullmatch(r"(CS|CK|CO)\d{2}(\d{2})?", code or ""):
        raise ValidationError({"code": _("A class code is CS, CK or CO followed by two or four digits.")})
    parent = code[:-2]
    if not CatalogClass.objects.filter(code=parent).exists():
        raise ValidationError({"code": _("Create the parent class %(code)s first.") % {"code": parent}})
    obj, created = CatalogClass.objects.update_or_create(
        code=code, defaults={"level": "middle" if len(code) == 4 else "minor", "parent_id": parent,
                             "name_zh": name_zh, "name_en": name_en, "park": park})
    record_change(actor=actor, action="catalog.class.save", obj=obj, after={"name_zh": name_zh},
                  park_code=park.code if park else "")
    return obj


@transaction.atomic
def save_enum_value(*, actor, value) -> None:
    """Add or change one value of an enumeration (R-6.3, R-6.4: fuel, vegetation, soil types);
    audited, and accepted by ingestion from the next batch."""
    before = None
    if value.pk:
        old = type(value).objects.get(pk=value.pk)
        before = {"code": old.code, "label_zh": old.label_zh, "label_en": old.label_en}
    value.full_clean()
    value.save()
    record_change(actor=actor, action="catalog.enum_value.save", obj=value, before=before,
                  after={"code": value.code, "label_zh": value.label_zh, "label_en": value.label_en})
    bump_config_version()


@transaction.atomic
def save_data_item(*, actor, item: DataItem | None = None, reason: str = "", **fields) -> DataItem:
    """Create or change a data item, standard or park-defined (R-6.3–6.5, Appendix A); validated,
    audited, and live for ingestion at once."""
    before = model_to_dict(item, fields=ITEM_FIELDS) if item and item.pk else None
    item = item or DataItem()
    for key, value in fields.items():
        setattr(item, key, value)
    validate_item_code(item.code, park=item.park)
    item.minor_id = item.code[:6]
    if item.data_type == DataType.NUMBER and item.unit and units.canonical(item.unit) is None:
        raise ValidationError({"unit": _("Unknown unit %(unit)s: pick one the unit registry knows, e.g. kWh, t, "
                                         "GJ, m3.") % {"unit": item.unit}})
    if item.data_type == DataType.ENUM and item.enumeration_id is None:
        raise ValidationError({"enumeration": _("An enumeration item needs its list of values.")})
    item.full_clean()
    item.save()
    record_change(actor=actor, action="catalog.item.create" if before is None else "catalog.item.update",
                  obj=item, before=before, after=model_to_dict(item, fields=ITEM_FIELDS), reason=reason,
                  park_code=item.park.code if item.park else "")
    bump_config_version()
    return item
