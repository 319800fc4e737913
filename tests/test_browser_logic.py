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


FORM_LOGIC_JS = ROOT / "static" / "entry" / "form-logic.js"


@pytest.mark.django_db
def test_conditions_and_calculations_agree_with_the_server():
    """static/entry/form-logic.js walks a form as apps/entry/validation.py does: for valid input the browser's
    visible values and calculated fields equal the server's cleaned values (the default forms' published
    versions and the validator tests' form with hidden fields, a hidden repeat section and row sums)."""
    from playwright.sync_api import sync_playwright

    from apps.entry.models import FormVersion
    from apps.entry.validation import validate_values
    from tests.test_entry_validation import DEFINITION, GOOD

    ledger = FormVersion.objects.get(form__code="energy-fuel-ledger").definition
    sinks = FormVersion.objects.get(form__code="vegetation-soil-sinks").definition
    cases = [
        (DEFINITION, GOOD),
        (DEFINITION, {**GOOD, "amount": "100.3", "kind": "coal", "coal_only": "7", "double": 1, "note": "备注",
                      "at": "2026-01-31T08:00Z", "day": "2026-02-28",
                      "coal_lots": [{"lot": "A1"}, {"lot": "B2"}],
                      "fuels": [{"fuel": "a", "qty": 60, "ncv": 1.5}, {"fuel": "b", "qty": "45.5", "ncv": "2"}]}),
        (DEFINITION, {**GOOD, "kind": "gas", "coal_only": 3, "coal_lots": [{"lot": "hidden"}]}),
        (ledger, {"fuels": [{"fuel_type": "raw_coal", "fuel_amount": 120.5, "ncv": 20910, "emission_factor": 1.9},
                            {"fuel_type": "diesel", "fuel_amount": "3.2", "ncv": "42650"}],
                  "product_output": 10.5, "process_emission_factor": 0.05, "landfilled_waste": 12}),
        (ledger, {}),
        (sinks, {"vegetation": [{"vegetation_type": "arbor", "vegetation_area": 12.34, "sequestration_rate": 5.5},
                                {"vegetation_type": "shrub"}],
                 "soil": [{"soil_type": "yellow_brown_earth", "soil_organic_carbon": 12.5}]}),
    ]
    expected = []
    for definition, values in cases:
        cleaned, errors = validate_values(definition, values, lang="en")
        assert errors == [], errors  # only valid input: where the browser and the server must agree
        expected.append(cleaned)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_content("<!doctype html><meta charset=utf-8><title>form logic</title>")
            page.add_script_tag(path=str(LOGIC_JS))
            page.add_script_tag(path=str(FORM_LOGIC_JS))
            got = page.evaluate("(cases) => cases.map(([d, v]) => FormLogic.evaluate(d, v).values)",
                                [[d, v] for d, v in cases])
        finally:
            browser.close()
    for n, (browser_values, server_values) in enumerate(zip(got, expected, strict=True)):
        assert browser_values == server_values, n
    assert expected[1]["fuels"][1] == {"fuel": "b", "qty": 45.5, "ncv": 2, "heat": 91}
    assert "coal_lots" in expected[1] and "coal_lots" not in expected[2] and "coal_only" not in expected[2]
    assert expected[3]["fuel_emissions_total"] == pytest.approx(228.95)
