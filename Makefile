# The one entry point for people and CI. `make serve` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MS_VENV := .venv-ministack
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
MS_STAMP := $(MS_VENV)/.installed

.PHONY: serve test lint typecheck pytest install install-test ministack browser bench bench-quick bench-soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP) $@

# The S3 test server lives in its own virtualenv: it pins a botocore that clashes with a current boto3.
$(MS_STAMP):
	$(PYTHON) -m venv $(MS_VENV)
	$(MS_VENV)/bin/pip install --quiet 'ministack==1.5.33'
	touch $@

install: $(STAMP)
install-test: $(TEST_STAMP) $(MS_STAMP)

serve: $(STAMP)
	$(BIN)/callvault db upgrade
	$(BIN)/callvault serve

lint: $(TEST_STAMP)
	$(BIN)/ruff check callvault tests bench
	$(BIN)/ruff format --check callvault tests bench
	$(BIN)/hadolint Dockerfile

typecheck: $(TEST_STAMP)
	$(BIN)/mypy

pytest: install-test
	CALLVAULT_MINISTACK=$(CURDIR)/$(MS_VENV)/bin/ministack $(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# Benchmarks print tables and compare with a baseline measured in the same run; they never fail on timing.
bench: install-test
	CALLVAULT_MINISTACK=$(CURDIR)/$(MS_VENV)/bin/ministack $(BIN)/python bench/ingest.py
	CALLVAULT_MINISTACK=$(CURDIR)/$(MS_VENV)/bin/ministack $(BIN)/python bench/webhook.py
	CALLVAULT_MINISTACK=$(CURDIR)/$(MS_VENV)/bin/ministack $(BIN)/python bench/playback.py

bench-quick: install-test
	CALLVAULT_MINISTACK=$(CURDIR)/$(MS_VENV)/bin/ministack $(BIN)/python bench/ingest.py --quick
	CALLVAULT_MINISTACK=$(CURDIR)/$(MS_VENV)/bin/ministack $(BIN)/python bench/webhook.py --quick
	CALLVAULT_MINISTACK=$(CURDIR)/$(MS_VENV)/bin/ministack $(BIN)/python bench/playback.py --quick

bench-soak: install-test
	CALLVAULT_MINISTACK=$(CURDIR)/$(MS_VENV)/bin/ministack $(BIN)/python bench/ingest.py --soak

clean:
	rm -rf $(VENV) $(MS_VENV) callvault-data .pytest_cache .mypy_cache .ruff_cache
