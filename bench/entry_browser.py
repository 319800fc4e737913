"""The browser phases of bench/entry.py (issue #10): the filling page as a clerk feels it.

gunicorn serves the product as in production (carbonpark/gunicorn.conf.py, gevent workers, WhiteNoise for the
static files after collectstatic) on a free port against the bench database; Playwright drives Debian's
Chromium (headless) logged in as the park's clerk. Every time is read from the page's own clock
(performance.now, Navigation and Resource Timing, the marks static/entry/filling.js sets), so Playwright's
round trips to the browser are not in the figures.

  render   — navigation start until the frame after filling.js has put every control of the form in the DOM
             ("filling-drawn"), split into the server's answer (responseStart), the HTML read and the scripts
             loaded (filling-start), drawing (filling-built) and the first frame;
  validate — from the input event of a value typed into a field until its error is in the field's error list,
             and from the next value until the list is empty again; split into filling.js's debounce (input to
             the request leaving), the request (Resource Timing) and showing the answer;
  submit   — from the click on Submit until the submission's page has loaded (loadEventEnd), split into the
             submit request and the page that follows.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

RENDER_JS = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const m = (n) => (performance.getEntriesByName(n)[0] || {}).startTime;
  return {server: nav.responseStart, html: nav.responseEnd, start: m("filling-start"), built: m("filling-built"),
          drawn: m("filling-drawn"), controls: document.querySelectorAll("#filling-form .ff-ctl").length,
          bytes: nav.transferSize};
}"""

ARM_JS = """(key) => {
  const ul = document.querySelector('[data-error-for="' + key + '"]');
  const input = document.querySelector('.ff-field[data-path="' + key + '"] .ff-ctl');
  const vb = window.__vb = {typed: null, done: null, want: null};
  input.addEventListener("input", () => { vb.typed = performance.now(); vb.done = null; }, true);
  new MutationObserver(() => {
    if (vb.typed === null || vb.done !== null) return;
    if ((vb.want === "error") === (ul.children.length > 0)) vb.done = performance.now();
  }).observe(ul, {childList: true});
}"""

RESULT_JS = """() => {
  const vb = window.__vb;
  const req = performance.getEntriesByType("resource").filter((e) => e.name.includes("/validate")).pop();
  performance.clearResourceTimings();
  return {typed: vb.typed, done: vb.done, sent: req ? req.startTime : null, answered: req ? req.responseEnd : null};
}"""

WATCH_SUBMIT_JS = """() => {
  const f = window.fetch;
  window.fetch = (url, opts) => {
    const isSubmit = String(url).endsWith("/submit");
    if (isSubmit) sessionStorage.setItem("b_sent", performance.timeOrigin + performance.now());
    return f(url, opts).then((r) => {
      if (isSubmit) sessionStorage.setItem("b_answered", performance.timeOrigin + performance.now());
      return r;
    });
  };
  document.getElementById("submit-button").addEventListener("click", () => {
    sessionStorage.setItem("b_click", performance.timeOrigin + performance.now());
  }, true);
}"""

SUBMITTED_JS = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const g = (k) => Number(sessionStorage.getItem(k));
  const out = {click: g("b_click"), sent: g("b_sent"), answered: g("b_answered"),
               loaded: performance.timeOrigin + nav.loadEventEnd, navStart: performance.timeOrigin};
  sessionStorage.clear();
  return out;
}"""


def gunicorn(database_url: str):
    """The product's WSGI server on a free port (tests/gunicorn_server.py), static files collected first."""
    from django.core.management import call_command

    from tests.gunicorn_server import Gunicorn

    call_command("collectstatic", interactive=False, verbosity=0)
    log = Path(tempfile.mkdtemp(prefix="bench-entry-")) / "gunicorn.log"
    return Gunicorn(database_url, log)


class Browser:
    def __init__(self, base_url: str):
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        self.context = self.browser.new_context(locale="zh-CN", viewport={"width": 1440, "height": 900},
                                                base_url=base_url)
        self.context.set_default_timeout(30_000)
        self.page = self.context.new_page()

    def login(self, username: str, password: str) -> None:
        page = self.page
        page.goto("/login/?next=/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("#login-form [type=submit]")
        page.wait_for_url("**/")

    def close(self) -> None:
        self.context.close()
        self.browser.close()
        self._pw.stop()

    # --- phases ----------------------------------------------------------------------------------------------

    def open_form(self, url: str) -> dict:
        page = self.page
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector("#filling-form[data-drawn]", state="attached")
        return page.evaluate(RENDER_JS)

    def until(self, js: str, timeout: float = 30) -> None:
        """Poll ``js`` (an expression) until true: the page's CSP (script-src 'self') refuses the eval that
        Playwright's wait_for_function needs. The figures come from the page's clock, not from this loop."""
        deadline = time.monotonic() + timeout
        while not self.page.evaluate(f"() => !!({js})"):
            if time.monotonic() > deadline:
                raise TimeoutError(js)
            time.sleep(0.005)

    def settle(self) -> None:
        """Until the page's own validation on load has answered (the status line says how many errors)."""
        self.until("document.getElementById('filling-status').textContent !== ''")

    def render(self, url: str, rounds: int, controls: int) -> list[dict]:
        first = self.open_form(url)  # a cold cache: reported, not counted
        out = [first]
        for _ in range(rounds):
            got = self.open_form(url)
            assert got["controls"] == controls, (got["controls"], controls)
            out.append(got)
        return out

    def validate(self, url: str, key: str, bad: str, good: str, rounds: int) -> tuple[list[dict], list[dict]]:
        page = self.page
        self.open_form(url)
        self.settle()
        page.evaluate(ARM_JS, key)
        selector = f'.ff-field[data-path="{key}"] .ff-ctl'
        shown, cleared = [], []
        for _ in range(rounds):
            for want, value, into in (("error", bad, shown), ("clear", good, cleared)):
                page.evaluate("(w) => { window.__vb.want = w; window.__vb.typed = null; "
                              "window.__vb.done = null; performance.clearResourceTimings(); }", want)
                page.fill(selector, value)
                self.until("window.__vb.done !== null")
                page.wait_for_timeout(30)  # the Resource Timing entry lands after the body is read
                into.append(page.evaluate(RESULT_JS))
        return shown, cleared

    def submit(self, url: str) -> dict:
        page = self.page
        self.open_form(url)
        self.settle()
        page.evaluate(WATCH_SUBMIT_JS)
        try:
            with page.expect_navigation(wait_until="load", timeout=15_000):
                page.click("#submit-button")
        except Exception as e:
            status = page.inner_text("#filling-status")
            errors = page.evaluate("() => [...document.querySelectorAll('.errorlist li')].map((li) => "
                                   "(li.closest('[data-path]') || {}).dataset?.path + ': ' + li.textContent)")
            raise RuntimeError(f"not submitted: {status} {errors[:5]}") from e
        self.until("performance.getEntriesByType('navigation')[0].loadEventEnd > 0")
        assert "/fill/" not in page.url, page.url
        return page.evaluate(SUBMITTED_JS)
