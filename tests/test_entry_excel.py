"""XLSX templates of form versions and their import (apps/entry/excel, R-7.3.4): the template's validation
lists, units and version sheet; a filled template's errors each named by sheet, row and column, and nothing
stored while any exists; formulas, other versions and hostile files refused with codes."""

import io
import zipfile

import pytest
from openpyxl import load_workbook

from apps.accounts import access
from apps.entry.excel import import_template, read_filled, template, template_version
from apps.entry.excel.layout import LISTS_SHEET, META_SHEET
from apps.entry.models import FormVersion
from apps.entry.services import create_form, publish
from tests.test_entry_validation import DEFINITION

SYSTEM = access.SystemPrincipal("test")


@pytest.fixture
def version(park):
    form = create_form(actor=SYSTEM, park=park, code="tp01-excel", name_zh="导入测试", definition=DEFINITION)
    return publish(actor=SYSTEM, form=form)


def ledger():
    return FormVersion.objects.get(form__code="energy-fuel-ledger", number=1)


def filled(version, plain: dict, rows: list[list], *, extra=None) -> bytes:
    """The version's template with ``plain`` values (by key) in the first sheet and ``rows`` in the repeat
    sheet named 标签 (the test form's section titles are all 标签: sheets 标签, 标签_2, 标签_3)."""
    book = load_workbook(io.BytesIO(template(version)))
    ws = book[book.sheetnames[0]]
    for r in range(2, ws.max_row + 1):
        key = ws.cell(row=r, column=5).value
        if key in plain:
            ws.cell(row=r, column=4, value=plain[key])
    rep = book["标签_2"]
    for i, row in enumerate(rows):
        for c, v in enumerate(row, 1):
            rep.cell(row=4 + i, column=c, value=v)
    if extra:
        extra(book)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


@pytest.mark.django_db
def test_template_has_units_lists_ranges_and_the_version_sheet():
    v = ledger()
    book = load_workbook(io.BytesIO(template(v)))
    assert book[META_SHEET].sheet_state == "hidden" and book[LISTS_SHEET].sheet_state == "hidden"
    meta = {r[0]: r[1] for r in book[META_SHEET].iter_rows(values_only=True)}
    assert meta["form"] == "energy-fuel-ledger" and meta["version"] == 1 and meta["content_hash"] == v.content_hash
    ws = book[book.sheetnames[0]]
    assert ws.protection.sheet
    zh, en = [c.value for c in ws[1]], [c.value for c in ws[2]]
    assert any("(t)" in (h or "") for h in zh) and any("(t)" in (h or "") for h in en)  # units in the headers
    assert "fuel_heat" not in [c.value for c in ws[3]]  # calculated: the server computes it
    lists = [dv for dv in ws.data_validations.dataValidation if dv.type == "list"]
    assert lists and LISTS_SHEET in lists[0].formula1
    choices = [r[0] for r in book[LISTS_SHEET].iter_rows(values_only=True) if r[0]]
    assert "无烟煤" in choices or len(choices) >= 3
    ranges = [dv for dv in ws.data_validations.dataValidation if dv.type == "decimal"]
    assert ranges and ranges[0].operator == "greaterThanOrEqual" and ranges[0].formula1 == "0"
    assert ws["A4"].protection.locked is False and ws["A1"].protection.locked is not False


@pytest.mark.django_db
def test_a_good_file_is_read_and_stored_once(version):
    data = filled(version, {"amount": 12.5, "kind": "标签", "coal_only": 5}, [["diesel", 20, 43]])
    assert template_version(io.BytesIO(data)) == ("tp01-excel", 1)
    stored = []
    result = import_template(version, io.BytesIO(data), store=stored.append)
    assert result.errors == [] and result.stored
    # the Chinese label of a choice is read as its value
    assert stored == [{"amount": 12.5, "kind": "coal", "coal_only": 5,
                       "fuels": [{"fuel": "diesel", "qty": 20, "ncv": 43}]}]
    assert result.cleaned["fuels"][0]["heat"] == 860


@pytest.mark.django_db
def test_ten_errors_are_all_reported_by_cell_and_nothing_is_stored(version):
    def formula(book):
        book["标签_2"]["C8"] = "=1+1"

    data = filled(version, {"amount": -1, "kind": "不存在", "note": "x" * 11, "day": "2026-02-30",
                            "at": "yesterday"},
                  [["diesel", "abc", 43], ["", 5, 1], ["coal", -3, 2], ["gas", 10, None], ["oil", 1, None]],
                  extra=formula)
    stored = []
    result = import_template(version, io.BytesIO(data), store=stored.append, lang="en")
    assert stored == [] and not result.stored
    got = {(e["sheet"], e["cell"], e["code"]) for e in result.errors}
    assert got == {
        ("标签", "D2", "E8103"),  # amount below 0
        ("标签", "D3", "E8106"),  # not a choice
        ("标签", "D4", "E8107"),  # text too long
        ("标签", "D5", "E8108"),  # no such date
        ("标签", "D6", "E8109"),  # not a date-time
        ("标签_2", "B4", "E8102"),  # text for a number
        ("标签_2", "A5", "E8101"),  # required fuel missing
        ("标签_2", "B6", "E8103"),  # negative quantity
        ("标签_2", "C7", "E8121"),  # the row's constraint: a calorific value where fuel was used
        ("标签_2", "C8", "E8405"),  # a formula
    }, result.errors
    assert len(result.errors) == 10
    assert all(e["messages"]["zh"] and e["messages"]["en"] and e["row"] for e in result.errors)


@pytest.mark.django_db
def test_another_versions_template_is_refused(version, park):
    old = template(version)
    version.form.definition = {**DEFINITION, "period": "year"}
    version.form.save()
    v2 = publish(actor=SYSTEM, form=version.form)
    assert v2.number == 2
    result = read_filled(v2, io.BytesIO(old))
    assert [e["code"] for e in result.errors] == ["E8404"] and "v1" in result.errors[0]["messages"]["en"]
    assert [e["code"] for e in read_filled(version, template(ledger())).errors] == ["E8404"]


def _zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


@pytest.mark.django_db
def test_hostile_files_get_codes(version):
    good = template(version)
    with zipfile.ZipFile(io.BytesIO(good)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    bomb = _zip({**members, "xl/sharedStrings.xml": b"<sst>" + b"<si><t>aaaa</t></si>" * 3_000_000 + b"</sst>"})
    cases = {
        "not a zip": (b"PK\x03\x04 this is not really a zip", "E8401"),
        "text": ("名称,数量\n".encode("gbk"), "E8401"),
        "too large": (b"\0" * (10 * 1024 * 1024 + 1), "E8402"),
        "bomb": (bomb, "E8403"),
        "broken xml": (_zip({**members, "xl/workbook.xml": b"<workbook>\x00&#0;</workbook"}), "E8401"),
        "empty": (b"", "E8401"),
    }
    for name, (data, code) in cases.items():
        result = import_template(version, io.BytesIO(data), store=lambda v: pytest.fail("stored"))
        assert [e["code"] for e in result.errors] == [code], name
    # huge and odd values in cells: coded by the validator at their cells
    data = filled(version, {"amount": "1e400"}, [["x", 1e308, 1]])
    codes = {(e["cell"], e["code"]) for e in read_filled(version, io.BytesIO(data)).errors}
    assert ("D2", "E8102") in codes and ("B4", "E8112") in codes


@pytest.mark.django_db
def test_labels_that_read_as_formulas_stay_text_in_the_template(park):
    hostile = {"zh": "=HYPERLINK(\"http://x\",\"点我\")", "en": "@SUM(A1)"}
    definition = {"format": 1, "period": "month", "sections": [{"key": "main", "title": {"zh": "主", "en": "M"},
                  "fields": [{"key": "kind", "type": "enum", "label": hostile, "options": [
                      {"value": "a", "label": {"zh": "=1+1", "en": "-1"}}, {"value": "b", "label": hostile}]}]}]}
    form = create_form(actor=SYSTEM, park=park, code="tp01-hostile", name_zh="恶意", definition=definition)
    v = publish(actor=SYSTEM, form=form)
    book = load_workbook(io.BytesIO(template(v)))
    cells = [c for ws in book.worksheets for row in ws.iter_rows() for c in row if c.value is not None]
    assert not [c.coordinate for c in cells if c.data_type == "f"]  # no formula anywhere
    assert book["主"]["A2"].value == "'" + hostile["zh"]
    # the choice picked from the list (shown with its ') is read as its value
    book["主"]["D2"] = "'=1+1"
    buf = io.BytesIO()
    book.save(buf)
    result = read_filled(v, buf.getvalue())
    assert result.errors == [] and result.values == {"kind": "a"}
