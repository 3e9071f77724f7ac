# Set-up and everyday commands. `make demo` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO := .demo

.PHONY: venv test demo lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

# The warehouse tests also run against PostgreSQL when a server answers at PG_URL
# (under CI=true a missing server fails those tests instead of skipping them).
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
PG_ANSWERS := $(BIN)/python -c "import sys, sqlalchemy as sa; sa.create_engine(sys.argv[1], connect_args={'connect_timeout': 3}).connect().close()"

test: $(STAMP)
	@if [ -z "$$SCORECARD_TEST_POSTGRES_URL" ] && $(PG_ANSWERS) "$(PG_URL)" 2>/dev/null; then \
	  export SCORECARD_TEST_POSTGRES_URL="$(PG_URL)"; fi; \
	echo "PostgreSQL for tests: $${SCORECARD_TEST_POSTGRES_URL:-none (those tests skip; under CI=true they fail)}"; \
	$(BIN)/python -m pytest

# The demo runs the nightly job's code through the connectors: the vendor simulator serves GitHub,
# PagerDuty, Jira and ServiceNow for the last 90 days (the manual KPI values come from a file), `backfill`
# reads them into scorecard.db and writes the HTML report to .demo/reports/, `show` prints the scorecard, and the
# simulator stops.
demo: $(STAMP)
	@mkdir -p $(DEMO) && rm -f $(DEMO)/scorecard.yaml
	@set -e; \
	$(BIN)/scorecard simulate --port 0 --days 90 --config scorecard.yaml --write-config $(DEMO)/scorecard.yaml \
	  --warehouse-url sqlite:///scorecard.db 2> $(DEMO)/simulator.log & simulator=$$!; \
	trap 'kill $$simulator 2>/dev/null || true' EXIT; \
	for i in $$(seq 150); do [ -f $(DEMO)/scorecard.yaml ] && break; sleep 0.2; done; \
	[ -f $(DEMO)/scorecard.yaml ] || { cat $(DEMO)/simulator.log; exit 1; }; \
	head -1 $(DEMO)/simulator.log; \
	GITHUB_TOKEN=demo PAGERDUTY_TOKEN=demo JIRA_EMAIL=demo@example.com JIRA_TOKEN=demo SN_USER=demo SN_PASSWORD=demo \
	  DAGSTER_HOME=$(CURDIR) \
	  $(BIN)/scorecard backfill --config $(DEMO)/scorecard.yaml --days 90
	$(BIN)/scorecard show --config $(DEMO)/scorecard.yaml
	@echo
	@echo "Warehouse: $(CURDIR)/scorecard.db (SQLite; tables kpi_scores, node_scores, metric_values, views scorecard_latest, kpi_history)"
	@echo "HTML report: $$(ls -t $(CURDIR)/$(DEMO)/reports/*-*.html | head -1) (every report: $(CURDIR)/$(DEMO)/reports/index.html)"
	@echo "Dagster UI on it: DAGSTER_HOME=\$$PWD SCORECARD_CONFIG=$(DEMO)/scorecard.yaml $(BIN)/dagster dev"
	@echo "  (with the simulator running: $(BIN)/scorecard simulate --port 8765 --days 90 --config scorecard.yaml \\"
	@echo "   --write-config $(DEMO)/scorecard.yaml, and GITHUB_TOKEN, PAGERDUTY_TOKEN, JIRA_EMAIL, JIRA_TOKEN,"
	@echo "   SN_USER, SN_PASSWORD set to any value)"

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/derive.py
	@if [ -z "$$SCORECARD_TEST_POSTGRES_URL" ] && $(PG_ANSWERS) "$(PG_URL)" 2>/dev/null; then \
	  export SCORECARD_TEST_POSTGRES_URL="$(PG_URL)"; fi; $(BIN)/python benchmarks/load.py
	$(BIN)/python benchmarks/backfill.py

clean:
	rm -rf $(VENV) .demo .dagster_home logs scorecard.db scorecard.db-wal scorecard.db-shm .pytest_cache .ruff_cache *.egg-info
