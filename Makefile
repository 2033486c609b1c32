# billops: make install | test | demo | bench   (see README.md)
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
export BILLOPS_LANDING   ?= data/landing
export BILLOPS_WAREHOUSE ?= data/warehouse.duckdb
export DAGSTER_HOME      ?= $(CURDIR)/.dagster

.PHONY: install test demo bench dev clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	cd dbt_project && ../$(BIN)/dbt parse --quiet
	touch $@

test: install
	$(BIN)/pytest -q

# The demo business: 1,000 customers; September closed, October simulated, generated and closed.
DEMO := data/demo
DEMO_ENV := BILLOPS_LANDING=$(DEMO)/landing BILLOPS_WAREHOUSE=$(DEMO)/warehouse.duckdb DAGSTER_HOME=$(CURDIR)/$(DEMO)/dagster
demo: install
	rm -rf $(DEMO)
	$(DEMO_ENV) $(BIN)/billops generate --month 2026-09 --customers 1000 --seed 7
	$(DEMO_ENV) $(BIN)/billops close --month 2026-09
	$(DEMO_ENV) $(BIN)/billops simulate --month 2026-10 --seed 7
	$(DEMO_ENV) $(BIN)/billops generate --month 2026-10 --customers 1000 --seed 7
	$(DEMO_ENV) $(BIN)/billops close --month 2026-10
	@echo
	@echo "Open the UI on this warehouse and its runs:"
	@echo "  $(DEMO_ENV) $(BIN)/dagster dev"

dev: install
	$(BIN)/dagster dev

clean:
	rm -rf $(VENV) data .dagster dbt_project/target dbt_project/logs

BENCH_CUSTOMERS ?= 10000
bench: install
	BENCH_CUSTOMERS=$(BENCH_CUSTOMERS) $(BIN)/python bench/run.py
