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

demo: install
	BILLOPS_LANDING=tests/fixtures/case-basic-2026-10/landing BILLOPS_WAREHOUSE=data/demo.duckdb $(BIN)/billops close --month 2026-10
	@echo "Open the UI on this run:  DAGSTER_HOME=$(DAGSTER_HOME) BILLOPS_WAREHOUSE=data/demo.duckdb $(BIN)/dagster dev"

dev: install
	$(BIN)/dagster dev

clean:
	rm -rf $(VENV) data .dagster dbt_project/target dbt_project/logs
