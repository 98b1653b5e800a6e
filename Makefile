# gitops-cli developer entry points. `make test` and `make demo` create .venv themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test unit integration demo lint format bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

test: install
	$(BIN)/pytest

unit: install
	$(BIN)/pytest -m "not integration"

integration: install
	$(BIN)/pytest -m integration

demo: install
	bash examples/demo.sh

lint: install
	$(BIN)/ruff check gitops_cli tests
	$(BIN)/mypy gitops_cli

format: install
	$(BIN)/ruff format gitops_cli tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
