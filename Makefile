# The two commands a newcomer needs:
#   make run    create .venv, install, initialise an SQLite database with demo data, serve
#   make test   install the test extras and run the whole suite, then ruff and mypy
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
# Tests run on every core; `make test PYTEST_ARGS=` runs them in one process.
PYTEST_ARGS ?= -n auto

.PHONY: run test pytest lint bench clean messages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# Development serving is plain HTTP on loopback, so cookies cannot be marked Secure here.
run: export PORTAL_SECURE_COOKIES ?= false
run: $(VENV)/.installed
	$(BIN)/portal init
	$(BIN)/portal demo
	@echo
	@echo "Log in at http://$(HOST):$(PORT)/staff/login with a demo account above."
	@echo "For the second step, get the current code in another terminal with:"
	@echo "  $(BIN)/portal totp DEMO DEMO DEMO DEMO PORT ALXX"
	@echo "Raise a concern at http://$(HOST):$(PORT)/report"
	$(BIN)/portal serve --host $(HOST) --port $(PORT)

test: pytest lint

pytest: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check portal tests bench
	$(BIN)/ruff format --check portal tests bench
	$(BIN)/mypy
	$(BIN)/bandit -c pyproject.toml -r portal -q
	$(BIN)/lint-imports --no-cache

# After changing a translatable string: re-extract, update every catalogue (new strings come out
# untranslated, removed ones go) and recompile the .mo files; then translate what is empty.
messages: $(VENV)/.installed
	$(BIN)/python -m portal.i18n.catalogues update

bench: $(VENV)/.installed
	$(BIN)/python bench/submissions.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
