# billops: make install | test | demo | bench   (see README.md)
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
export BILLOPS_LANDING   ?= data/landing
export BILLOPS_WAREHOUSE ?= data/warehouse.duckdb
export DAGSTER_HOME      ?= $(CURDIR)/.dagster
export BILLOPS_PUBLISHED ?= data/published
# Let Python cache compiled modules (.pyc) in the venv even where the environment says not to
# (PYTHONDONTWRITEBYTECODE=1 here): otherwise every process (each close, each dbt invocation,
# each test worker) compiles dagster, dbt and GX again, ~3 s apiece.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install install-browser test demo bench dev console clean

install: $(VENV)/.installed

# --no-compile: Python compiles (and caches) only the modules it imports, not all of dagster, dbt and GX.
# Then dagster-dbt's documented preparation: dbt parses the project into the manifest @dbt_assets read.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -e '.[dev]'
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dagster-dbt project prepare-and-package --file assets/dbt_project.py
	touch $@

test: install install-browser
	$(BIN)/pytest -q

# The browser tests (tests/ui) drive Debian's chromium through Playwright; Playwright's own
# browser download cannot work here. Installed when missing; where apt-get cannot run, the
# browser tests skip and say so loudly in pytest's summary.
CHROMIUM := /usr/bin/chromium
install-browser:
	@if [ -x $(CHROMIUM) ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	else echo "!!! $(CHROMIUM) missing and apt-get needs root: the browser tests (tests/ui) will SKIP"; exit 0; fi; \
	( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium ) \
	  >/tmp/billops-install-chromium.log 2>&1 \
	  || echo "!!! apt-get install chromium failed (/tmp/billops-install-chromium.log): the browser tests (tests/ui) will SKIP"

# The demo business: 1,000 customers; September closed, October simulated, generated and closed.
DEMO := data/demo
DEMO_ENV := BILLOPS_LANDING=$(DEMO)/landing BILLOPS_WAREHOUSE=$(DEMO)/warehouse.duckdb DAGSTER_HOME=$(CURDIR)/$(DEMO)/dagster \
            BILLOPS_PUBLISHED=$(DEMO)/published BILLOPS_QUEUE_URL=sqlite:///$(CURDIR)/$(DEMO)/ops.sqlite
demo: install
	rm -rf $(DEMO)
	$(DEMO_ENV) $(BIN)/billops generate --month 2026-09 --customers 1000 --seed 7
	$(DEMO_ENV) $(BIN)/billops close --month 2026-09
	$(DEMO_ENV) $(BIN)/billops simulate --month 2026-10 --seed 7
	$(DEMO_ENV) $(BIN)/billops generate --month 2026-10 --customers 1000 --seed 7
	$(DEMO_ENV) $(BIN)/billops close --month 2026-10
	@for account in lead:lead sam:specialist ann:approver fin:finance; do \
	  echo "$(DEMO_PASSWORD)" | $(DEMO_ENV) $(BIN)/billops users add $${account%%:*} --role $${account#*:} || exit 1; done
	@echo
	@echo "Open the UI on this warehouse and its runs: make dev"
	@echo "Open the billing team's console: make console, then http://127.0.0.1:8765/ and log in as lead"
	@echo "  (or sam: specialist, ann: approver, fin: finance) with the demo-only password $(DEMO_PASSWORD)"

# The demo's accounts share one password, printed by make demo: for the demo only, never for real data.
DEMO_PASSWORD := demo-only-password

# The billing team's console on the demo (make demo first): the published copy and the queue, never the warehouse.
console: install
	$(DEMO_ENV) $(BIN)/billops console

# The UI on the demo (make demo first): the same warehouse, runs, published copy and queue.
dev: install
	@[ -f $(DEMO)/warehouse.duckdb ] || echo "note: $(DEMO) is empty: run 'make demo' first to see two closed months"
	$(DEMO_ENV) $(BIN)/python -c 'import sys; from pathlib import Path; from orchestration.instance_config import prepare_instance; prepare_instance(Path(sys.argv[1]))' $(CURDIR)/$(DEMO)/dagster
	$(DEMO_ENV) $(BIN)/dagster dev -w workspace.yaml

clean:
	rm -rf $(VENV) data .dagster dbt_project/target dbt_project/logs

BENCH_CUSTOMERS ?= 10000
bench: install
	BENCH_CUSTOMERS=$(BENCH_CUSTOMERS) $(BIN)/python bench/run.py
