#!/usr/bin/env python
"""Fuzz the HTTP API from its own OpenAPI document with schemathesis (issue #7, keep it fixed).

`make fuzz-api` (and `.ci/run`): a fresh database beside DATABASE_URL's (``<name>_fuzz``, dropped at the
end), migrated, with a fixture park FZ01 (two sources, an integrator token); gunicorn on a free port as in
production (DEBUG off); then ``st run`` against /api/schema/ within a bounded budget (FUZZ_API_SECONDS,
default 150 s), authenticated with the park's token. The run fails on any server error (5xx) or any
answer that does not match the schema (status code, content type, headers, body).

Without DATABASE_URL / REDIS_URL the embedded PostgreSQL and Redis of the test suite are started
(tests/services_plugin.py). Reports (JUnit, NDJSON) land in var/fuzz-api/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PARK = "FZ01"
SOURCES = {"FZ01-EM-0001": ["CS010201"], "FZ01-WW-0001": ["CS030201", "CS030202"]}
# The checks that define "0 server errors, 0 schema violations".
CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_headers_conformance", "response_schema_conformance"]
OUT = ROOT / "var" / "fuzz-api"


def fuzz_database_url(url: str) -> tuple[str, str]:
    """(the fuzz database's URL, its name): the same server, the database name suffixed ``_fuzz``."""
    parts = urlsplit(url)
    name = (parts.path.lstrip("/") or "postgres") + "_fuzz"
    return urlunsplit(parts._replace(path="/" + name)), name


def admin_sql(url: str, *statements: str) -> None:
    """Statements run on the server's maintenance database (CREATE/DROP DATABASE cannot run in a transaction)."""
    import psycopg

    from carbonpark.dburl import parse_database_url

    cfg = parse_database_url(url)
    kw = {"dbname": "postgres", "user": cfg["USER"], "host": cfg["HOST"], "port": cfg["PORT"],
          "password": cfg["PASSWORD"]}
    with psycopg.connect(**{k: v for k, v in kw.items() if v}, autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)


def prepare_fixture() -> str:
    """Migrate the fuzz database and make park FZ01 with its sources; returns an integrator token key."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carbonpark.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from apps.accounts.services import issue_token, save_park
    from apps.catalog.models import DataItem
    from apps.sources.services import save_source

    call_command("migrate", interactive=False, verbosity=0)
    park = save_park(actor="fuzz", code=PARK, name_zh="模糊测试园区", name_en="Fuzz park", time_zone="Asia/Shanghai")
    for source_id, codes in SOURCES.items():
        save_source(actor="fuzz", source_id=source_id, park=park, name=source_id,
                    data_items=list(DataItem.objects.filter(code__in=codes)))
    _token, key = issue_token(actor="fuzz", park=park, name="fuzz")
    connections.close_all()
    return key


def wait_healthy(base: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"gunicorn exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    sys.exit(f"gunicorn did not answer /healthz within {timeout:.0f} s")


def write_config(path: Path, key: str) -> None:
    """schemathesis.toml: the token, English messages, and the fixture's identifiers offered for path
    parameters half of the time (the other half stays random, so 404s are fuzzed too)."""
    sources = ", ".join(f'"{s}"' for s in SOURCES)
    path.write_text(f"""
headers = {{ Authorization = "Token {key}", Accept-Language = "en" }}

[dictionaries.sources]
values = [{sources}]
[dictionaries.parks]
values = ["{PARK}"]
[dictionaries.items]
values = ["CS010201", "CS030201", "CK010103"]

[parameters]
"path.sourceId" = {{ dictionary = "sources", probability = 0.5 }}
"path.code" = {{ dictionary = "parks", probability = 0.3 }}
"query.sourceId" = {{ dictionary = "sources", probability = 0.5 }}
"query.park" = {{ dictionary = "parks", probability = 0.5 }}
""")


def main() -> int:
    import tests.services_plugin  # noqa: F401 - starts the embedded servers when DATABASE_URL/REDIS_URL are unset
    from carbonpark.embedded import free_port

    budget = int(os.environ.get("FUZZ_API_SECONDS", "150"))
    base_url = os.environ["DATABASE_URL"]
    url, name = fuzz_database_url(base_url)
    admin_sql(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = url
    key = prepare_fixture()

    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    log = OUT / "gunicorn.log"
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "0"}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    with open(log, "wb") as out:
        server = subprocess.Popen([str(gunicorn), "carbonpark.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2",
                                   "--timeout", "60"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, server, log)
        config = OUT / "schemathesis.toml"
        write_config(config, key)
        cmd = [str(Path(sys.executable).with_name("st")), "--config-file", str(config), "run",
               f"{base}/api/schema/", "--checks", ",".join(CHECKS), "--max-time", str(budget),
               "--phases", "examples,coverage,fuzzing", "--request-timeout", "30",
               # one worker: on Python 3.11 two threads parsing source at once (hypothesis describing a
               # lambda) trip CPython's shared AST recursion counter, "SystemError: AST constructor ..."
               "--workers", "1",
               "--seed", os.environ.get("FUZZ_API_SEED", "20261201"), "--continue-on-failure",
               "--report", "junit,ndjson", "--report-dir", str(OUT), "--warnings", "off"]
        cmd += sys.argv[1:]
        print("+", " ".join(cmd[1:]).replace(key, "<token>"), flush=True)
        hooks = {"SCHEMATHESIS_HOOKS": "scripts.fuzz_hooks", "PYTHONPATH": str(ROOT)}  # tus chunks: raw bytes
        code = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "NO_COLOR": "1", **hooks}).returncode
        errors = [line for line in log.read_text(errors="replace").splitlines() if "Traceback" in line]
        if errors:
            print(f"the server logged {len(errors)} traceback(s): {log}")
            code = code or 1
        return code
    finally:
        server.terminate()
        server.wait(timeout=30)
        admin_sql(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
