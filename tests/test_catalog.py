"""The catalog of Appendix A, park-defined codes, the unit registry and the USCC check."""

import csv
import hashlib
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from apps.catalog import units
from apps.catalog.models import CatalogClass, DataItem, Enumeration
from apps.catalog.services import save_catalog_class, save_data_item
from apps.core.validators import uscc_is_valid

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CSV = ROOT / "apps" / "catalog" / "data" / "catalog.csv"


def _rows(path):
    with open(path, encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_migration_loaded_all_37_items_with_exactly_those_codes(db):
    rows = _rows(SHIPPED_CSV)
    assert len(rows) == 37
    standard = DataItem.objects.filter(park__isnull=True)
    assert sorted(standard.values_list("code", flat=True)) == sorted(r["code"] for r in rows)
    for r in rows:
        item = standard.get(code=r["code"])
        assert (item.name_zh, item.name_en, item.data_type, item.unit, item.precision, item.basis,
                item.default_frequency, item.table) == (r["name_zh"], r["name_en"], r["data_type"], r["unit"],
                                                        r["precision"], r["basis"], r["default_frequency"],
                                                        int(r["table"]))
        assert item.methods == r["methods"].split(";")
        assert item.minor.code == r["code"][:6] and item.minor.parent.code == r["code"][:4]


def test_shipped_catalog_is_the_specs_catalog():
    """The shipped CSV is the specification's spec/catalog.csv, whose digest tests/data/README.md records
    (the test reads only the repository, issue #7 item 10)."""
    readme = (ROOT / "tests" / "data" / "README.md").read_text(encoding="utf-8")
    assert hashlib.sha256(SHIPPED_CSV.read_bytes()).hexdigest() in readme


def test_enumerations_with_chinese_and_english_labels(db):
    for code, item_code in [("fuel_type", "CS010104"), ("vegetation_type", "CK010103"), ("soil_type", "CK010202")]:
        enum = Enumeration.objects.get(code=code)
        assert DataItem.objects.get(code=item_code).enumeration == enum
        values = list(enum.values.all())
        assert len(values) >= 6
        assert all(v.label_zh and v.label_en for v in values)
    assert Enumeration.objects.get(code="fuel_type").values.filter(code="natural_gas", label_zh="天然气").exists()


def test_park_defined_code_needs_its_parent_classes(park):
    with pytest.raises(ValidationError, match="CS99, CS9901"):
        save_data_item(actor="t", code="CS990101", park=park, name_zh="自定义", data_type="number", unit="kWh",
                       methods=["realtime"])
    save_catalog_class(actor="t", code="CS99", name_zh="园区自定义", park=park)
    save_catalog_class(actor="t", code="CS9901", name_zh="光伏自发电", park=park)
    item = save_data_item(actor="t", code="CS990101", park=park, name_zh="光伏发电量", data_type="number",
                          unit="kWh", methods=["realtime"])
    assert item.minor == CatalogClass.objects.get(code="CS9901")


@pytest.mark.parametrize("code", ["CX010101", "CS01010", "CS0101011", "cs010101", "CS01A101", ""])
def test_malformed_codes_are_refused(park, code):
    with pytest.raises(ValidationError):
        save_data_item(actor="t", code=code, park=park, name_zh="x", data_type="number", unit="kWh",
                       methods=["realtime"])


def test_unknown_unit_refused_for_number_items(park):
    save_catalog_class(actor="t", code="CS98", name_zh="x", park=park)
    save_catalog_class(actor="t", code="CS9801", name_zh="x", park=park)
    with pytest.raises(ValidationError, match="widgets"):
        save_data_item(actor="t", code="CS980101", park=park, name_zh="x", data_type="number", unit="widgets",
                       methods=["realtime"])


@pytest.mark.parametrize(
    ("value", "src", "dst", "expected"),
    [
        (1.5, "MWh", "kWh", 1500.0), (2, "GWh", "kWh", 2_000_000.0), (1500, "kWh", "MWh", 1.5),
        (1, "GJ/t", "kJ/kg", 1000.0), (20908, "kJ/kg", "GJ/t", 20.908), (2500, "kg", "t", 2.5),
        (3, "10^4Nm3", "Nm3", 30000.0), (1, "万m³", "m3", 10000.0), (1000, "L", "m3", 1.0),
        (1, "kgCO2/kWh", "tCO2/MWh", 1.0), (15, "亩", "hm2", 1.0), (1, "MWh", "GJ", 3.6),
        (7, "KWH", "kWh", 7.0), (5, "m³", "m3", 5.0),
    ],
)
def test_compatible_units_convert(value, src, dst, expected):
    assert units.convert(value, src, dst) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("src", "dst"), [("kg", "kWh"), ("m3", "Nm3"), ("tCO2", "tCO2e"), ("L", "t"),
                                          ("parsecs", "km"), ("kWh", "")])
def test_incompatible_units_do_not_convert(src, dst):
    assert units.conversion_factor(src, dst) is None


@pytest.mark.parametrize("code", ["914403001922038216", "91440300708461136T", "91110000802100433B",
                                  "91350900587527783P", " 91110108551385082q ", "９１１１０１０８５５１３８５０８２Q"])
def test_real_unified_social_credit_codes_pass(code):
    assert uscc_is_valid(code)


@pytest.mark.parametrize("code", ["914403001922038217", "9133010057462616XH", "91110000800088421P",
                                  "91440300192203821", "9144030019220382160", "91440300192203821I"])
def test_wrong_unified_social_credit_codes_fail(code):
    assert not uscc_is_valid(code)


def test_park_uscc_is_validated(db):
    from apps.accounts.services import save_park

    with pytest.raises(ValidationError, match="914403001922038217"):
        save_park(actor="t", code="BAD01", name_zh="坏", uscc="914403001922038217")
