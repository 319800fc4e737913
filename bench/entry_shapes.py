"""The two 200-field forms of bench/entry.py (issue #10): their definitions and a day's values.

``wide``  — the shape the bench had first: 100 top-level fields and a repeat section of 20 rows x 5 fields
            (200 values, 105 field definitions).
``strict`` — 200 field definitions: 190 top-level fields in four sections (every item of the catalog bound once,
            free numbers with ranges, calculated sums, enumerations, texts behind conditions, dates) and a
            repeat section of 10 fields with one row.
"""

from __future__ import annotations

import itertools
import time

_SERIAL = itertools.count(int(time.time() * 1000))  # the catalog's "unique" numbers: never twice on the platform


def label(zh: str, en: str) -> dict:
    return {"zh": zh, "en": en}


YES_NO = [{"value": "yes", "label": label("有", "yes")}, {"value": "no", "label": label("无", "no")}]


def _fuel_fields(extra: bool) -> list[dict]:
    fields = [{"key": "fuel_type", "item": "CS010104", "required": True},
              {"key": "fuel_amount", "item": "CS010101", "required": True, "min": 0},
              {"key": "ncv", "item": "CS010102", "min": 0},
              {"key": "ef", "item": "CS010103", "min": 0},
              {"key": "heat", "type": "number", "label": label("热量", "Heat"), "unit": "GJ",
               "calc": {"/": [{"*": [{"var": "fuel_amount"}, {"var": "ncv"}]}, 1000]}}]
    if extra:
        fields += [{"key": "co2", "type": "number", "label": label("排放量", "CO2"), "unit": "t",
                    "calc": {"*": [{"var": "heat"}, {"var": "ef"}]}},
                   {"key": "share", "type": "number", "label": label("占比", "Share"), "unit": "%", "min": 0,
                    "max": 100},
                   {"key": "kind", "type": "enum", "label": label("用途", "Use"),
                    "options": [{"value": "boiler", "label": label("锅炉", "boiler")},
                                {"value": "kiln", "label": label("窑炉", "kiln")}]},
                   {"key": "line_date", "type": "date", "label": label("日期", "Date")},
                   {"key": "line_note", "type": "text", "label": label("备注", "Note"), "maxLength": 200}]
    return fields


# --- wide: 100 top-level fields + 20 rows x 5 ----------------------------------------------------------------

def wide_definition() -> dict:
    top = []
    for i in range(90):
        top.append({"key": f"n{i:02d}", "type": "number", "label": label(f"数值 {i}", f"Number {i}"), "min": 0,
                    "max": 1_000_000, "unit": "t", "required": i < 10})
    for i in range(5):
        top.append({"key": f"c{i}", "type": "number", "label": label(f"合计 {i}", f"Sum {i}"),
                    "calc": {"+": [{"var": f"n{j:02d}"} for j in range(i * 18, i * 18 + 18)]}})
    top.append({"key": "has_cert", "type": "enum", "label": label("有证书", "Certificate"), "options": YES_NO})
    for i in range(4):
        top.append({"key": f"t{i}", "type": "text", "label": label(f"说明 {i}", f"Note {i}"),
                    "visibleIf": {"==": [{"var": "has_cert"}, "yes"]}})
    return {"format": 1, "period": "day", "title": label("基准表单", "Bench form"), "sections": [
        {"key": "main", "title": label("数值", "Numbers"), "fields": top,
         "constraints": [{"expr": {">=": [{"var": "n00"}, {"var": "n01"}]}, "fields": ["n01"],
                          "message": label("n01 不应大于 n00。", "n01 must not exceed n00.")}]},
        {"key": "fuels", "title": label("燃料", "Fuels"), "repeat": {"min": 0, "max": 50},
         "fields": _fuel_fields(extra=False)}]}


def wide_values(seed: int, fuel_codes: list[str]) -> dict:
    out = {f"n{i:02d}": (1000 - i + seed % 7) for i in range(90)}
    out["has_cert"] = "yes"
    out.update({f"t{i}": f"说明 {i} / {seed}" for i in range(4)})
    out["fuels"] = [{"fuel_type": fuel_codes[r % len(fuel_codes)], "fuel_amount": 10 + r + seed % 5,
                     "ncv": 20000 + r * 10, "ef": 2.5} for r in range(20)]
    return out  # 95 + 5 calculated top-level, 20 x 5 in rows: 200 field values


# --- strict: 190 top-level field definitions + a repeat section of 10 -----------------------------------------

TOP_LEVEL = 190
N_CALC, N_ENUM, N_TEXT, N_DATE = 15, 8, 20, 10


def strict_definition(items: list[tuple[str, str]]) -> dict:
    """``items``: (code, data type) of the catalog's active items, each bound to one top-level field."""
    bound = [{"key": f"i_{code.lower()}", "item": code, **({"min": 0} if kind == "number" else {})}
             for code, kind in items]
    n_free = TOP_LEVEL - len(bound) - N_CALC - N_ENUM - N_TEXT - N_DATE
    numbers = [{"key": f"x{i:03d}", "type": "number", "label": label(f"数值 {i}", f"Number {i}"), "min": 0,
                "max": 10_000_000, "unit": "t", "required": i < 10} for i in range(n_free)]
    item_numbers = [f["key"] for f, (_c, kind) in zip(bound, items, strict=True) if kind == "number"]
    sums = []
    for i in range(N_CALC):
        if i < 10:  # sums of free numbers
            terms = [{"var": f"x{j:03d}"} for j in range(i * n_free // 10, (i + 1) * n_free // 10)]
        elif i < 14:  # sums of catalog numbers
            terms = [{"var": k} for k in item_numbers[(i - 10)::4]]
        else:  # a sum of sums
            terms = [{"var": f"k{j:02d}"} for j in range(10)]
        sums.append({"key": f"k{i:02d}", "type": "number", "label": label(f"合计 {i}", f"Sum {i}"), "unit": "t",
                     "calc": {"+": terms}})
    notes = [{"key": f"e{i}", "type": "enum", "label": label(f"选项 {i}", f"Choice {i}"), "options": YES_NO}
             for i in range(N_ENUM)]
    notes += [{"key": f"t{i:02d}", "type": "text", "label": label(f"说明 {i}", f"Note {i}"), "maxLength": 500,
               "visibleIf": {"==": [{"var": f"e{i % N_ENUM}"}, "yes"]}} for i in range(N_TEXT)]
    notes += [{"key": f"d{i}", "type": "date", "label": label(f"日期 {i}", f"Date {i}")} for i in range(N_DATE)]
    definition = {"format": 1, "period": "day", "title": label("基准表单（200 个字段）", "Bench form (200 fields)"),
                  "sections": [
                      {"key": "catalog", "title": label("目录数据项", "Catalog items"), "fields": bound},
                      {"key": "numbers", "title": label("数值", "Numbers"), "fields": numbers,
                       "constraints": [{"expr": {">=": [{"var": "x000"}, {"var": "x001"}]}, "fields": ["x001"],
                                        "message": label("x001 不应大于 x000。", "x001 must not exceed x000.")}]},
                      {"key": "sums", "title": label("合计", "Sums"), "fields": sums},
                      {"key": "notes", "title": label("说明", "Notes"), "fields": notes},
                      {"key": "lines", "title": label("燃料", "Fuels"), "repeat": {"min": 1, "max": 50},
                       "fields": _fuel_fields(extra=True)}]}
    top = sum(len(s["fields"]) for s in definition["sections"] if "repeat" not in s)
    assert top == TOP_LEVEL and top + len(_fuel_fields(extra=True)) == 200, top
    return definition


def strict_values(seed: int, items: list[tuple[str, str]], choices: dict[str, list[str]]) -> dict:
    out, serial = {}, next(_SERIAL)
    for n, (code, kind) in enumerate(items):
        key = f"i_{code.lower()}"
        if kind == "number":
            out[key] = 10 * (1 + n + seed % 3)  # a multiple of every precision of the catalog (10 at most)
        elif kind == "enum":
            out[key] = choices[code][seed % len(choices[code])]
        elif kind == "date":
            out[key] = "2025-06-30"
        else:
            out[key] = f"BENCH-{code}-{serial}"
    n_free = TOP_LEVEL - len(items) - N_CALC - N_ENUM - N_TEXT - N_DATE
    out.update({f"x{i:03d}": 100_000 - i + seed % 7 for i in range(n_free)})
    out.update({f"e{i}": "yes" if i % 2 == 0 else "no" for i in range(N_ENUM)})  # half the texts hidden
    out.update({f"t{i:02d}": f"说明 {i} / {seed}" for i in range(N_TEXT) if (i % N_ENUM) % 2 == 0})
    out.update({f"d{i}": f"2025-0{1 + i % 9}-1{i % 10}" for i in range(N_DATE)})
    fuel = choices["CS010104"]
    out["lines"] = [{"fuel_type": fuel[seed % len(fuel)], "fuel_amount": 12 + seed % 5, "ncv": 20500, "ef": 2.6,
                     "share": 40, "kind": "boiler", "line_date": "2025-06-30", "line_note": f"第 {seed} 行"}]
    return out
