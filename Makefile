# Two commands (README): `make run` starts the whole product; `make test` runs the whole test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test smoke bench bench-small bench-mqtt bench-peer bench-edge bench-admin bench-entry bench-front lint docs messages fuzz fuzz-api

run: $(VENV)/.runtime
	$(BIN)/python -m carbonpark.embedded run

test: $(VENV)/.dev
	@scripts/install-chromium
	@scripts/install-mosquitto
	@scripts/install-systemd-analyze
	@scripts/install-nginx
	$(BIN)/python -m pytest $(PYTEST_ARGS)

smoke: $(VENV)/.runtime
	$(BIN)/python scripts/smoke.py

bench: $(VENV)/.dev
	$(BIN)/python -m bench.http_ingest

# One reading per request (issue #9 d6): wrk against the run command's web server, 10 and 1 000 connections, /healthz.
bench-small: $(VENV)/.dev
	@scripts/install-wrk
	$(BIN)/python -m bench.http_small $(BENCH_ARGS)

bench-mqtt: $(VENV)/.dev
	$(BIN)/python -m bench.mqtt_ingest

# Our MQTT consumers against a Node-RED peer, side by side in one run (issue #9); npm installs the peer
# (bench/peer/package-lock.json) into var/bench/peer on first run.
bench-peer: $(VENV)/.dev
	@scripts/install-mosquitto
	$(BIN)/python -m bench.peer

bench-edge: $(VENV)/.dev
	$(BIN)/python -m bench.edge_poll

bench-admin: $(VENV)/.dev
	$(BIN)/python bench/admin_browser.py

# Issue #10: the 200-field filling page, served in-process and by gunicorn to Chromium (bench/entry.py).
bench-entry: $(VENV)/.dev
	$(BIN)/python bench/entry.py $(BENCH_ARGS)

bench-front: $(VENV)/.dev
	@scripts/install-nginx
	$(BIN)/python -m bench.front

# Property-based fuzzing of every codec and the record decoder: >= 100 000 inputs per property
# (tests/fuzzing.py; `make test` runs the short profile). FUZZ_EXAMPLES=... to change the count.
fuzz: $(VENV)/.dev
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest tests/test_codec_properties.py -q $(PYTEST_ARGS)

# schemathesis against /api/schema/ on a fresh fixture database, bounded (FUZZ_API_SECONDS, default 150):
# 0 server errors, 0 answers outside the schema (scripts/fuzz_api.py).
fuzz-api: $(VENV)/.dev
	$(BIN)/python scripts/fuzz_api.py

lint: $(VENV)/.dev
	$(BIN)/ruff check .

docs: $(VENV)/.runtime
	$(BIN)/python manage.py error_codes --write docs/error-codes.md
	$(BIN)/python manage.py access_matrix --write docs/roles.md
	$(BIN)/python manage.py form_schema --write docs/form-definition.schema.json

messages: $(VENV)/.runtime
	$(BIN)/python manage.py compilemessages -l zh_Hans -l en

$(VENV)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt $(VENV)/.runtime
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	touch $@
