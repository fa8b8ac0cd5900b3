# The two commands a newcomer needs: `make run` and `make test`. Both install what they need first.
SHELL := /bin/bash
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: run test demo bench-demo prometheus dashboards compose-tools compose-secrets test-pg15 migrate lint browser ui-shots envoy-config bench-gateway bench-calendar bench-events bench-feed bench-queue bench-cases bench-monitor bench-notify bench-ui install clean

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install -q "uv==$(UV_VERSION)"

.venv/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet
	touch $@

install: .venv/.installed

# Prometheus and promtool from Debian's package, unpacked (not installed) into .tools/: no root at run time
PROMETHEUS_DIR := .tools/prometheus
$(PROMETHEUS_DIR)/usr/bin/promtool:
	rm -rf $(PROMETHEUS_DIR) && mkdir -p $(PROMETHEUS_DIR)/deb
	cd $(PROMETHEUS_DIR)/deb && { apt-get download -qq prometheus 2>/dev/null || \
		{ apt-get update -qq && apt-get download -qq prometheus; }; }
	dpkg -x $(PROMETHEUS_DIR)/deb/prometheus_*.deb $(PROMETHEUS_DIR)
	rm -rf $(PROMETHEUS_DIR)/deb

prometheus: $(PROMETHEUS_DIR)/usr/bin/promtool ## Prometheus and promtool (Debian's package, unpacked into .tools/)

compose-tools: ## Debian's docker-compose, to validate deploy/compose*.yaml (no engine needed), installed when missing (root; apt)
	@command -v docker-compose >/dev/null || { \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null 2>&1 || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; }; }

compose-secrets: install ## deploy/secrets/*.env and jwks.json for the compose stack (kept if present; git-ignored)
	$(PY) -m shared.devinfra.compose_secrets

browser: ## Debian's Chromium and a CJK font for the browser tests, installed when missing (root; apt)
	@command -v chromium >/dev/null && fc-list :lang=zh | grep -q . || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; }

run: install prometheus ## start the database, broker, all services and the gateway; Ctrl-C stops them
	$(PY) -m shared.devinfra.run

test: install browser prometheus compose-tools ## the whole suite, against the embedded PostgreSQL and broker, the screens in Chromium
	$(PY) -m pytest $(PYTEST_ARGS)

ui-shots: install browser ## the browser tests at both screen sizes (1920x1080, 1366x768): screenshots in var/ui-shots/
	HALL_UI_SIZES=all $(PY) -m pytest tests/ui $(PYTEST_ARGS)

test-pg15: install ## migration and database-concurrency tests against the machine's PostgreSQL 15
	HALL_TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/postgres \
		$(PY) -m pytest -m pg $(PYTEST_ARGS)

migrate: install ## apply every service's migrations (URLs from the services' settings)
	$(PY) -m shared.migrate upgrade

lint: install ## ruff; mypy --strict on shared/, mypy (typed definitions) on services/; the Envoy files and Grafana dashboards current
	$(PY) -m ruff check .
	$(PY) -m mypy --strict shared
	$(PY) -m mypy services
	$(PY) -m shared.devinfra.envoy check
	$(PY) -m shared.devinfra.grafana check

dashboards: install ## render deploy/grafana/dashboards/*.json from their spec (shared/devinfra/grafana.py)
	$(PY) -m shared.devinfra.grafana render

envoy-config: install ## render deploy/envoy/envoy.yaml.j2 for compose and Kubernetes, and validate them with Envoy
	$(PY) -m shared.devinfra.envoy render

demo: install prometheus ## a simulated day of a busy hall (the previous working day, 150x) through the public API; a summary beside the monitor's KPIs
	$(PY) -m shared.devinfra.demo

bench-demo: install prometheus ## a whole compressed hall day: its wall time (limit 5 min) and the platform's CPU per process and database sizes
	$(PY) bench/demo_bench.py

bench-gateway: install ## Envoy vs direct under wrk (installed if missing): a bare endpoint, the deadline endpoint; one sign-in's time, key exchanges/s
	$(PY) bench/gateway_bench.py
	$(PY) bench/identity_bench.py

bench-calendar: install ## the engine, then the deadline endpoint through the gateway (Envoy, wrk)
	$(PY) bench/calendar_bench.py
	$(PY) bench/calendar_endpoint_bench.py

bench-events: install ## relay throughput beside a raw producer; backlog drain after an outage
	$(PY) bench/events_bench.py

bench-feed: install ## commit-to-consumer latency at 200 events/s and backlog throughput (apply_batch 1 vs default); commit-to-feed-client; broker-to-feed
	$(PY) bench/events_latency.py
	$(PY) bench/feed_latency.py

bench-queue: install ## issue-ticket + call-next through the gateway (wrk) against pgbench on the same SQL; open-loop latency, call to display; estimated-wait accuracy over simulated days
	$(PY) bench/queue_bench.py
	$(PY) bench/queue_wait_bench.py

bench-cases: install ## case registration through the gateway (wrk) against pgbench on the same SQL; open-loop latency; re-keying 100,000 open cases after a calendar change; importing 100,000 cases; PDF receipts rendered per second
	$(PY) bench/cases_bench.py
	$(PY) bench/cases_import_bench.py
	$(PY) bench/documents_bench.py

bench-monitor: install ## due work with 1,000,000 open cases against 10,000; the cases consumer's events/s and commit-to-applied latency; due moment to the supervision feed; a county month's KPIs and scores; the hall consumer's events/s
	$(PY) bench/monitor_bench.py
	$(PY) bench/monitor_kpi_bench.py

bench-notify: install ## webhook deliveries/s through the dispatcher to a local receiver (and the receiver's own capacity); one alert to 500 SSE clients of a notify feed, p99 arrival
	$(PY) bench/notify_bench.py

bench-ui: install browser ## each screen's weight and time to interactive in Chromium; a call's way to the display's text, p99
	$(PY) bench/ui_bench.py

clean:
	rm -rf var/test-*
