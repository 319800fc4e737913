"""Production mode from the environment (issue #7, item 9): `manage.py check --deploy` is clean with
CARBONPARK_ENV=production, and the settings it checks are really in force (HTTPS behind the TLS front,
secure cookies, HSTS, a Content Security Policy); a production start without ALLOWED_HOSTS refuses to run."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {"CARBONPARK_ENV": "production", "ALLOWED_HOSTS": "carbon.example.com",
                  "SECRET_KEY": "k" * 20 + "-production-test-secret-key-0123456789-abcdefghijklmnop"}


def run(args, **env):
    base = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "CARBONPARK_ENV", "ALLOWED_HOSTS")}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True,
                          timeout=120)


def script_src(csp: str) -> list[str]:
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    return directives["script-src"]


def test_check_deploy_is_clean_in_production_mode():
    done = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION_ENV)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout
    assert "WARNING" not in done.stdout + done.stderr


def test_check_deploy_warns_outside_production_mode():
    """The same check on the development defaults does warn: the test above is not vacuous."""
    done = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], DEBUG="1")
    assert done.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016", "security.W018"):
        assert warning in done.stdout + done.stderr


def test_production_refuses_to_start_without_allowed_hosts():
    done = run(["manage.py", "check"], **{**PRODUCTION_ENV, "ALLOWED_HOSTS": ""})
    assert done.returncode != 0 and "needs ALLOWED_HOSTS" in done.stderr
    done = run(["manage.py", "check"], **{**PRODUCTION_ENV, "ALLOWED_HOSTS": "*"})
    assert done.returncode != 0 and "needs ALLOWED_HOSTS" in done.stderr


PROBE = """
import json, django
django.setup()
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
c = Client()
out = {}
r = c.get("/login/", HTTP_HOST="carbon.example.com")
out["plain_http"] = [r.status_code, r.get("Location")]
r = c.get("/healthz", HTTP_HOST="127.0.0.1:8000")
out["healthz_plain"] = r.status_code
r = c.get("/login/", HTTP_HOST="carbon.example.com", HTTP_X_FORWARDED_PROTO="https")
out["https"] = [r.status_code, r.get("Strict-Transport-Security"), r.get("Content-Security-Policy"),
                r.cookies["csrftoken"]["secure"] if "csrftoken" in r.cookies else None]
r = c.get("/login/", HTTP_HOST="evil.example", HTTP_X_FORWARDED_PROTO="https")
out["hostile_host"] = r.status_code
print(json.dumps(out))
"""


def test_production_mode_serves_https_only_with_hsts_csp_and_secure_cookies(db):
    done = run(["-c", PROBE], DJANGO_SETTINGS_MODULE="carbonpark.settings", **PRODUCTION_ENV)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["plain_http"] == [301, "https://carbon.example.com/login/"]
    assert out["healthz_plain"] in (200, 503)  # the supervisor's probe on loopback: no redirect, no 400
    status, hsts, csp, secure_cookie = out["https"]
    assert status == 200
    assert hsts == "max-age=31536000; includeSubDomains; preload"
    assert script_src(csp) == ["'self'"] and "object-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert secure_cookie is True
    assert out["hostile_host"] == 400


def test_every_answer_carries_the_content_security_policy(client, db):
    r = client.get("/login/")
    csp = r["Content-Security-Policy"]
    assert "default-src 'self'" in csp and script_src(csp) == ["'self'"]  # no inline script, no eval
    assert b"onchange=" not in r.content and b"portal/language.js" in r.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"<script>" not in docs.content  # start-up script served as a file
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")


def test_the_usual_policy_is_built_once_and_a_nonce_or_changed_settings_still_count(settings):
    """apps.core.middleware.CSPMiddleware keeps django-csp's answers while building its usual header once."""
    from csp.middleware import CSPMiddleware as DjangoCsp
    from django.http import HttpResponse
    from django.test import RequestFactory

    from apps.core.middleware import CSPMiddleware

    ours, theirs = CSPMiddleware(lambda r: HttpResponse()), DjangoCsp(lambda r: HttpResponse())

    def header(mw, nonce=False):
        request = RequestFactory().get("/login/")
        mw.process_request(request)
        if nonce:
            str(request.csp_nonce)  # a page that uses the nonce
        return mw.process_response(request, HttpResponse())["Content-Security-Policy"], request

    plain = header(ours)[0]
    assert plain == header(ours)[0] == header(theirs)[0]
    with_nonce, request = header(ours, nonce=True)
    assert f"'nonce-{request._csp_nonce}'" in with_nonce and header(ours, nonce=True)[0] != with_nonce
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    assert header(ours)[0] == header(theirs)[0] == "default-src 'none'"
