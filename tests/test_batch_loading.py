"""Loading batch files (issue #11 items 4–5, interfaces.md §7): each bad input a test, atomic per file, the same
file twice stored once, the rejection report, the load log and audit record."""

from __future__ import annotations

import csv

import pytest
from openpyxl import load_workbook

from apps.accounts.access import SystemPrincipal
from apps.batch.loading import load_file, recover_interrupted_loads
from apps.batch.models import FileLoad
from apps.core.models import AuditEntry
from apps.ingestion.models import Reading
from tests import batch_files as bf

ROBOT = SystemPrincipal("test-batch")


@pytest.fixture(autouse=True)
def _reports(settings, tmp_path):
    settings.BATCH_REPORT_ROOT = tmp_path / "reports"


def load(tmp_path, park, filename, data, *, encoding="utf-8", **kw):
    path = bf.write(tmp_path, filename, data, encoding)
    return load_file(path, park=park, actor=kw.pop("actor", ROBOT), filename=filename, **kw)


def test_a_clean_csv_is_stored_whole_with_its_log_and_audit(tmp_path, park, meter):
    text = bf.csv_text(bf.readings(12), meta={"park": "TP01", "period": "202611", "records": 12})
    rep = load(tmp_path, park, bf.name(), text)
    assert rep.ok and (rep.rows, rep.accepted, rep.duplicates, rep.rejected) == (12, 12, 0, 0)
    assert Reading.objects.filter(source=meter, channel="file").count() == 12
    log = FileLoad.objects.get(pk=rep.load_id)
    assert (log.state, log.accepted, log.md5, log.actor_label) == ("done", 12, rep.md5, "test-batch")
    audit = AuditEntry.objects.get(action="batch.load", object_id=str(rep.load_id))
    assert audit.after["md5"] == rep.md5 and audit.after["accepted"] == 12 and audit.park_code == "TP01"


def test_the_same_file_again_stores_nothing_twice(tmp_path, park, meter):
    text = bf.csv_text(bf.readings(30))
    first = load(tmp_path, park, bf.name(), text, batch_size=7)
    again = load(tmp_path, park, bf.name(), text, batch_size=7)
    assert (first.accepted, first.duplicates) == (30, 0)
    assert (again.accepted, again.duplicates, again.rejected) == (0, 30, 0)
    assert Reading.objects.filter(source=meter).count() == 30


def test_bad_rows_are_listed_with_row_column_and_code_and_the_rest_is_stored(tmp_path, park, meter):
    rows = bf.readings(3) + [
        "TP01-EM-0001,CS010201,2026-11-05 00:00:00,abc,kWh,N",       # value not a number
        "TP01-EM-0001,CS010201,not-a-time,1,kWh,N",                   # timestamp
        "TP01-EM-0001,CS010201,2026-11-05 00:01:00,1",                # ragged
        "NOPE-0001,CS010201,2026-11-05 00:02:00,1,kWh,N",             # unknown source
        "TP01-EM-0001,CS010201,2026-11-05 00:03:00,1e400,kWh,N",      # huge number
        "TP01-EM-0001,CS010201,2026-11-05 00:04:00,9" + "9" * 500 + ",kWh,N",
    ]
    rep = load(tmp_path, park, bf.name(), bf.csv_text(rows))
    assert rep.ok and (rep.rows, rep.accepted, rep.rejected) == (9, 3, 6)
    got = {(r.row, r.column, r.code) for r in rep.rejections}
    assert got == {(5, "value", "E2002"), (6, "timestamp", "E2007"), (7, "", "E9151"), (8, "sourceId", "E2003"),
                   (9, "value", "E2008"), (10, "value", "E2008")}
    with open(rep.report_csv, encoding="utf-8-sig", newline="") as fh:
        table = list(csv.reader(fh))
    assert table[0] == ["row", "column", "code", "message_zh", "message_en"] and len(table) == 7
    assert {r[2] for r in table[1:]} == {"E2002", "E2007", "E9151", "E2003", "E2008"}
    sheet = load_workbook(rep.report_xlsx, read_only=True).worksheets[0]
    assert len(list(sheet.iter_rows())) == 7
    assert Reading.objects.count() == 3


def test_a_rejection_that_reads_like_a_formula_is_neutralised_in_the_report(tmp_path, park, meter):
    rows = ["=HYPERLINK(\"http://x\"),CS010201,2026-11-05 00:00:00,1,kWh,N"]
    rep = load(tmp_path, park, bf.name(), bf.csv_text(rows))
    assert rep.rejected == 1
    with open(rep.report_csv, encoding="utf-8-sig") as fh:
        body = fh.read()
    assert ",=HYPERLINK" not in body and "=HYPERLINK" in body  # quoted back only after the neutralising '


@pytest.mark.parametrize("encoding,prefix", [("gb18030", b""), ("utf-8", b"\xef\xbb\xbf"), ("utf-8", b"")])
def test_gb18030_and_bom_files_are_stored_correctly(tmp_path, park, encoding, prefix):
    from apps.catalog.models import DataItem
    from tests.conftest import add_source

    add_source(park, "TP01-TXT-01", ["CS010201"])
    text_item = DataItem.objects.filter(data_type="string").first()
    rows = bf.readings(2, source="TP01-TXT-01")
    data = prefix + bf.csv_text(rows, meta={"producer": "园区能源管理系统"}).encode(encoding)
    rep = load(tmp_path, park, bf.name(), data)
    assert rep.ok and rep.accepted == 2, rep
    # the same bytes decoded right: a Chinese text value comes back as written
    assert text_item is not None
    add_source(park, "TP01-TXT-02", [text_item.code])
    row = f"TP01-TXT-02,{text_item.code},2026-11-01 00:00:00,一号机组,,N"
    data = prefix + bf.csv_text([row]).encode(encoding)
    rep = load(tmp_path, park, bf.name(seq=2), data)
    assert rep.accepted == 1, rep.rejections
    assert Reading.objects.get(source__source_id="TP01-TXT-02").text_value == "一号机组"


def test_a_file_in_no_known_encoding_is_refused_whole(tmp_path, park, meter):
    data = bf.csv_text(bf.readings(2)).encode() + b"\xff\xfe\xfd\x80\x80\n"
    rep = load(tmp_path, park, bf.name(), data)
    assert rep.file_error.code == "E9104" and Reading.objects.count() == 0


def test_nul_bytes_refuse_their_row_only(tmp_path, park, meter):
    rows = bf.readings(1) + ["TP01-EM-0001,CS010201,2026-11-05 00:00:00,1\x002,kWh,N"]
    rep = load(tmp_path, park, bf.name(), bf.csv_text(rows))
    assert rep.accepted == 1 and [(r.row, r.column, r.code) for r in rep.rejections] == [(3, "value", "E9153")]


@pytest.mark.parametrize("header,code", [
    ("sourceId,dataCode,timestamp,value,unit", "E9105"),              # a column missing
    ("sourceId,dataCode,timestamp,value,unit,status,colour", "E9105"),  # an unknown one
    ("sourceId,sourceId,dataCode,timestamp,value,unit,status", "E9105"),  # repeated
])
def test_a_wrong_header_refuses_the_file(tmp_path, park, meter, header, code):
    rep = load(tmp_path, park, bf.name(), bf.csv_text(bf.readings(2), header=header))
    assert rep.file_error.code == code and Reading.objects.count() == 0
    assert FileLoad.objects.get(pk=rep.load_id).state == "failed"


def test_an_empty_file_and_a_bad_metadata_row(tmp_path, park, meter):
    assert load(tmp_path, park, bf.name(), b"").file_error.code == "E9121"
    rep = load(tmp_path, park, bf.name(seq=2), "# park TP01\n" + bf.csv_text(bf.readings(1)))
    assert rep.file_error.code == "E9106"


def test_a_wrong_records_count_refuses_the_whole_file_even_at_its_end(tmp_path, park, meter):
    text = bf.csv_text(bf.readings(20), meta={"records": 21})
    rep = load(tmp_path, park, bf.name(), text, batch_size=5)  # four batches ingested before the count is known
    assert rep.file_error.code == "E9107" and rep.accepted == 0
    assert Reading.objects.count() == 0
    assert load(tmp_path, park, bf.name(seq=2), bf.csv_text(bf.readings(1), meta={"records": "x"})
                ).file_error.code == "E9108"


def test_a_file_for_another_park_is_refused(tmp_path, park, other_park, meter):
    rep = load(tmp_path, park, bf.name(park="TP02"), bf.csv_text(bf.readings(2)))
    assert rep.file_error.code == "E9102"
    rep = load(tmp_path, park, bf.name(), bf.csv_text(bf.readings(2), meta={"park": "TP02"}))
    assert rep.file_error.code == "E9102"
    assert Reading.objects.count() == 0
    # the name is right but the rows name another park's source: those rows are rejected, as unknown here
    from tests.conftest import add_source

    add_source(other_park, "TP02-EM-0001", ["CS010201"])
    rep = load(tmp_path, park, bf.name(seq=3), bf.csv_text(bf.readings(2, source="TP02-EM-0001")))
    assert rep.ok and rep.rejected == 2 and {r.code for r in rep.rejections} == {"E2003"}


@pytest.mark.parametrize("filename", [
    "TP01_XX_202611_20261201083000_001.csv", "TP01_CS_202613_20261201083000_001.csv",
    "TP01_CS_202611_20261301083000_001.csv", "TP01_CS_202611_20261201083000_001.txt", "data.csv",
    "TP01_CS_2026Q5_20261201083000_001.csv", "../TP01_CS_202611_20261201083000_001.csv",
])
def test_bad_file_names_are_refused(tmp_path, park, meter, filename):
    path = bf.write(tmp_path, "f.csv", bf.csv_text(bf.readings(1)))
    rep = load_file(path, park=park, actor=ROBOT, filename=filename)
    assert rep.file_error.code == "E9101", rep.file_error


def test_a_user_without_the_right_is_refused(tmp_path, park, meter, django_user_model):
    from apps.accounts.services import set_membership

    viewer = django_user_model.objects.create_user("viewer")
    set_membership(actor="test", user=viewer, park=park, role="viewer")
    rep = load(tmp_path, park, bf.name(), bf.csv_text(bf.readings(1)), actor=viewer)
    assert rep.file_error.code == "E9127" and Reading.objects.count() == 0
    clerk = django_user_model.objects.create_user("clerk")
    set_membership(actor="test", user=clerk, park=park, role="operator")
    assert load(tmp_path, park, bf.name(seq=2), bf.csv_text(bf.readings(1)), actor=clerk).accepted == 1


# --- compression -------------------------------------------------------------------------------------------------

def test_gzip_and_zip_files_load(tmp_path, park, meter):
    raw = bf.csv_text(bf.readings(5)).encode()
    assert load(tmp_path, park, bf.name(ext="csv.gz"), bf.gzip_bytes(raw)).accepted == 5
    z = bf.zip_bytes({bf.name(seq=2): bf.csv_text(bf.readings(5, start_minute=5)).encode()})
    assert load(tmp_path, park, bf.name(seq=2, ext="csv.zip"), z).accepted == 5


def test_a_gzip_bomb_is_refused_without_inflating_it(tmp_path, park, meter, settings):
    settings.BATCH_MAX_BYTES = 20 * 1024 * 1024
    bomb = bf.gzip_bomb(200 * 1024 * 1024)
    assert len(bomb) < 400_000
    rep = load(tmp_path, park, bf.name(ext="csv.gz"), bomb)
    assert rep.file_error.code in ("E9114", "E9115")
    settings.BATCH_MAX_RATIO = 10_000  # the ratio aside, the size limit holds
    rep = load(tmp_path, park, bf.name(seq=2, ext="csv.gz"), bomb)
    assert rep.file_error.code == "E9114" and Reading.objects.count() == 0


def test_a_zip_bomb_is_refused(tmp_path, park, meter, settings):
    bomb = bf.zip_bomb(bf.name(), 150 * 1024 * 1024)
    assert len(bomb) < 400_000
    rep = load(tmp_path, park, bf.name(ext="csv.zip"), bomb)
    assert rep.file_error.code == "E9114"
    small = bf.zip_bomb(bf.name(), 5 * 1024 * 1024)  # under the size limit, but 1000:1
    assert load(tmp_path, park, bf.name(seq=2, ext="csv.zip"), small).file_error.code == "E9115"


def test_a_zip_must_hold_one_file_of_its_format(tmp_path, park, meter):
    two = bf.zip_bytes({"a.csv": b"x", "b.csv": b"y"})
    assert load(tmp_path, park, bf.name(ext="csv.zip"), two).file_error.code == "E9116"
    other = bf.zip_bytes({"a.xml": b"<batch/>"})
    assert load(tmp_path, park, bf.name(seq=2, ext="csv.zip"), other).file_error.code == "E9116"
    assert load(tmp_path, park, bf.name(seq=3, ext="csv.zip"), b"PK\x03\x04broken").file_error.code == "E9117"
    assert load(tmp_path, park, bf.name(seq=4, ext="csv.gz"), b"\x1f\x8bbroken").file_error.code == "E9117"


# --- XML ---------------------------------------------------------------------------------------------------------

def _xml(records: str, attrs: str = 'park="TP01" period="202611"') -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<batch {attrs}>\n{records}\n</batch>\n'


def test_an_xml_file_loads(tmp_path, park, meter):
    recs = "\n".join(f'<record sourceId="TP01-EM-0001" dataCode="CS010201" timestamp="2026-11-01 00:0{i}:00" '
                     f'value="{i}" unit="kWh" status="N"/>' for i in range(4))
    recs += '\n<record sourceId="TP01-EM-0001" timestamp="2026-11-01 00:09:00" value="1" colour="red"/>'
    rep = load(tmp_path, park, bf.name(ext="xml"), _xml(recs, 'park="TP01" records="5"'))
    assert rep.ok and rep.accepted == 4 and [(r.row, r.code) for r in rep.rejections] == [(7, "E9154")]


@pytest.mark.parametrize("doc", [
    # XXE: an external entity naming a local file
    '<?xml version="1.0"?>\n<!DOCTYPE batch [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n'
    '<batch park="TP01"><record sourceId="&e;" timestamp="2026-11-01 00:00:00" value="1"/></batch>',
    # billion laughs
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;'
    '&lol;&lol;&lol;"><!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>\n'
    '<batch park="TP01"><record sourceId="&lol3;" timestamp="2026-11-01 00:00:00" value="1"/></batch>',
    # a DTD, external, over the network
    '<?xml version="1.0"?>\n<!DOCTYPE batch SYSTEM "http://127.0.0.1:9/x.dtd">\n<batch park="TP01"/>',
])
def test_xml_with_a_dtd_is_refused_outright(tmp_path, park, meter, doc):
    rep = load(tmp_path, park, bf.name(ext="xml"), doc)
    assert rep.file_error.code == "E9109" and Reading.objects.count() == 0


def test_deeply_nested_and_malformed_xml_is_refused(tmp_path, park, meter):
    deep = "<batch>" + "<record>" * 50_000 + "</record>" * 50_000 + "</batch>"
    assert load(tmp_path, park, bf.name(ext="xml"), deep).file_error.code == "E9111"
    assert load(tmp_path, park, bf.name(seq=2, ext="xml"), "<batch><record></batch>").file_error.code == "E9110"
    assert load(tmp_path, park, bf.name(seq=3, ext="xml"), "<other/>").file_error.code == "E9111"
    rep = load(tmp_path, park, bf.name(seq=4, ext="xml"), _xml('<record sourceId="TP01-EM-0001" timestamp="2026-11-01 '
                                                              '00:00:00" value="1"/>', 'park="TP02"'))
    assert rep.file_error.code == "E9102"


# --- XLSX --------------------------------------------------------------------------------------------------------

HEAD = ["sourceId", "dataCode", "timestamp", "value", "unit", "status"]


def test_an_xlsx_file_loads_with_metadata_and_typed_cells(tmp_path, park, meter):
    from datetime import datetime

    rows = [["# park: TP01"], ["# records: 3"], HEAD,
            ["TP01-EM-0001", "CS010201", "2026-11-01 00:00:00", 1.5, "kWh", "N"],
            ["TP01-EM-0001", "CS010201", datetime(2026, 11, 1, 0, 1), 2, "kWh", None],
            ["TP01-EM-0001", "CS010201", "2026-11-01 00:02:00", "3", "MWh", "N"]]
    rep = load(tmp_path, park, bf.name(ext="xlsx"), bf.xlsx_bytes(rows))
    assert rep.ok and rep.accepted == 3, rep.rejections
    assert sorted(Reading.objects.values_list("value", flat=True)) == [1.5, 2.0, 3000.0]


def test_xlsx_formulas_refuse_their_rows_and_merged_cells_the_file(tmp_path, park, meter):
    rows = [HEAD, ["TP01-EM-0001", "CS010201", "2026-11-01 00:00:00", 1, "kWh", "N"],
            ["TP01-EM-0001", "CS010201", "2026-11-01 00:01:00", "=1+1", "kWh", "N"]]
    rep = load(tmp_path, park, bf.name(ext="xlsx"), bf.xlsx_bytes(rows))
    assert rep.accepted == 1 and [(r.row, r.column, r.code) for r in rep.rejections] == [(3, "value", "E9152")]
    rep = load(tmp_path, park, bf.name(seq=2, ext="xlsx"), bf.xlsx_bytes(rows[:2], merge="E2:F2"))
    assert rep.file_error.code == "E9113" and Reading.objects.count() == 1


def test_a_broken_workbook_is_refused(tmp_path, park, meter):
    assert load(tmp_path, park, bf.name(ext="xlsx"), b"not a zip").file_error.code == "E9112"


# --- the load log: interrupted loads -----------------------------------------------------------------------------

def test_a_load_left_running_is_marked_interrupted(park):
    stale = FileLoad.objects.create(park=park, filename="x.csv", md5="0" * 32, actor_label="gone")
    assert recover_interrupted_loads(grace_seconds=0) == 1
    stale.refresh_from_db()
    assert (stale.state, stale.error_code) == ("failed", "E9126")
    assert AuditEntry.objects.filter(action="batch.interrupted", object_id=str(stale.pk)).exists()
