"""The shared expression table (tests/data/expressions.json) in a real browser: Debian's Chromium loads the
vendored json-logic-js (static/vendor/json-logic/logic.js) on a tiny page and every case must give the expected
result, as apps/entry/logic/ does on the server (tests/test_entry_logic.py). R-7.3.1: conditions, constraints
and calculated fields run identically on both sides."""

import json
from pathlib import Path

import pytest

from tests.test_browser_admin import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parent.parent
LOGIC_JS = ROOT / "static" / "vendor" / "json-logic" / "logic.js"
TABLE = ROOT / "tests" / "data" / "expressions.json"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's Chromium is not installed"),
]

# Results are compared as JSON.stringify leaves them (Infinity and NaN become null; undefined: null), the
# normalisation apps.entry.logic.normalize applies on the server.
RUN = """(cases) => cases.map((c) => {
  try {
    const r = jsonLogic.apply(c.logic, c.data);
    return JSON.stringify(r === undefined ? null : r);
  } catch (e) { return "ERROR " + e.message; }
})"""


def test_the_expression_table_in_chromium():
    from playwright.sync_api import sync_playwright

    cases = json.loads(TABLE.read_text(encoding="utf-8"))["cases"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_content("<!doctype html><meta charset=utf-8><title>json-logic</title>")
            page.add_script_tag(path=str(LOGIC_JS))
            results = page.evaluate(RUN, cases)
        finally:
            browser.close()
    wrong = [f"{json.dumps(c['logic'])} with {json.dumps(c['data'])}: browser {got}, expected "
             f"{json.dumps(c['expected'])}" for c, got in zip(cases, results, strict=True)
             if got != json.dumps(c["expected"], separators=(",", ":"), ensure_ascii=False)]
    assert len(results) == len(cases) >= 150
    assert not wrong, "\n".join(wrong)
