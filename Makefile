# The two set-up commands (README.md): `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA := var

.PHONY: run test compile lint clean

$(BIN)/python:
	@$(PYTHON) -m venv --help >/dev/null 2>&1 && $(PYTHON) -c 'import ensurepip' 2>/dev/null || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.dev-installed: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

run: $(VENV)/.installed compile
	@test -f $(DATA)/dizimail.toml || $(BIN)/dizimail init --data-dir $(DATA) --port-base 10000 --demo
	$(BIN)/dizimail serve --config $(DATA)/dizimail.toml

# Our own sources compiled once: the environment may set PYTHONDONTWRITEBYTECODE, and every command-line
# call and child process (tests start hundreds) would compile them again (about 0.3 s each).
compile: $(VENV)/.installed
	@$(BIN)/python -m compileall -q src >/dev/null

test: $(VENV)/.dev-installed compile
	scripts/test-deps.sh
	$(BIN)/lint-imports
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) $(DATA)
