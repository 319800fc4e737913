# Two commands (README): `make run` starts the whole product; `make test` runs the whole test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test smoke bench bench-mqtt bench-edge bench-admin bench-front lint docs messages

run: $(VENV)/.runtime
	$(BIN)/python -m carbonpark.embedded run

test: $(VENV)/.dev
	@command -v chromium >/dev/null || scripts/install-chromium
	@scripts/install-mosquitto
	@scripts/install-systemd-analyze
	@scripts/install-nginx
	$(BIN)/python -m pytest $(PYTEST_ARGS)

smoke: $(VENV)/.runtime
	$(BIN)/python scripts/smoke.py

bench: $(VENV)/.dev
	$(BIN)/python -m bench.http_ingest

bench-mqtt: $(VENV)/.dev
	$(BIN)/python -m bench.mqtt_ingest

bench-edge: $(VENV)/.dev
	$(BIN)/python -m bench.edge_poll

bench-admin: $(VENV)/.dev
	$(BIN)/python bench/admin_browser.py

bench-front: $(VENV)/.dev
	@scripts/install-nginx
	$(BIN)/python -m bench.front

lint: $(VENV)/.dev
	$(BIN)/ruff check .

docs: $(VENV)/.runtime
	$(BIN)/python manage.py error_codes --write docs/error-codes.md

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
