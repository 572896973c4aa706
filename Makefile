# Two entry points: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench clean

$(STAMP): pyproject.toml sal_kafka/codec/_native.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sal-kafka dev

# lint first: a style or type error fails CI as a test would
test: lint
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

# the pure tests alone (no broker, no server process): seconds
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not broker and not server" tests

lint: $(STAMP)
	$(BIN)/ruff check sal_kafka tests benchmarks scripts
	$(BIN)/ruff format --check sal_kafka tests benchmarks scripts
	$(BIN)/mypy --strict sal_kafka

bench: $(STAMP)
	$(BIN)/python -m pytest benchmarks --benchmark-enable --benchmark-columns=median,iqr,ops -q

clean:
	rm -rf $(VENV) build dist *.egg-info
