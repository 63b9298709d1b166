# learnloop — two set-up commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
EXTRAS ?= dev,postgres,redis
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install demo test lint typecheck unit serve clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

## demo: install, prepare the demo model and serve it on $(HOST):$(PORT) (Ctrl-C stops)
demo: install
	$(BIN)/learnloop demo --host $(HOST) --port $(PORT)

## test: install if needed, then lint, type-check and run the whole test suite
test: install lint typecheck unit

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/python -m pytest -q

serve: install
	$(BIN)/learnloop serve --host $(HOST) --port $(PORT)

clean:
	rm -rf $(VENV) .learnloop .pytest_cache .mypy_cache .ruff_cache
