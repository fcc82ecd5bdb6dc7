# Two commands for a fresh machine:
#   make demo   set up .venv with vastbuild alone, check/build/deploy the examples locally
#   make test   add the test tools to .venv, then lint, type-check and run the whole suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SDK_PYTHON ?= $(shell for p in $$HOME/.pyenv/versions/3.1[2-9]*/bin/python3 python3.12 python3.13; do $$p -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null && { echo $$p; break; }; done)
SDK_VENV ?= .venv-sdk

.PHONY: venv sdk-venv demo test lint bench fuzz crash clean docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip

# what the demo needs: vastbuild and its dependencies
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# what the tests need besides: the test extra and the example plugin
$(VENV)/.test-installed: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]' -e examples/plugins/vastbuild-template
	touch $@

venv: $(VENV)/.installed

# The vastai SDK client needs Python >= 3.12 (see the README).
$(SDK_VENV)/bin/python:
	@test -n "$(SDK_PYTHON)" || { echo "no python3.12 found: set SDK_PYTHON"; exit 1; }
	$(SDK_PYTHON) -m venv $(SDK_VENV)
	$(SDK_VENV)/bin/pip install -q -U pip
	$(SDK_VENV)/bin/pip install -q vastai==1.9.1

sdk-venv: $(SDK_VENV)/bin/python

demo: $(VENV)/.installed
	$(BIN)/python examples/demo.py

lint: $(VENV)/.test-installed
	$(BIN)/ruff check vastbuild tests scripts bench examples/plugins examples/demo.py
	$(BIN)/lint-imports
	$(BIN)/mypy

# The editor grammar tests run VS Code's grammar engine under node (tests/editors);
# without node they are skipped, and nothing is installed here.
EDITOR_TEST_MODULES := tests/editors/node_modules/.installed
$(EDITOR_TEST_MODULES): tests/editors/package-lock.json
	@if command -v npm >/dev/null; then \
	  cd tests/editors && npm ci --no-audit --no-fund --silent && touch node_modules/.installed; \
	else echo "npm not found: the editor grammar tests need node and npm"; fi

test: $(VENV)/.test-installed sdk-venv lint $(EDITOR_TEST_MODULES)
	VASTBUILD_SDK_PYTHON=$(abspath $(SDK_VENV))/bin/python $(BIN)/pytest -q -n auto --dist loadfile

# Rewrite the parts of docs/ made from the code (tests/test_docs.py fails while stale).
docs: $(VENV)/.installed
	$(BIN)/python scripts/cli_docs.py

bench: $(VENV)/.installed
	$(BIN)/python bench/run.py --results bench/RESULTS.md

# Dedicated robustness runs, too long for `make test` (see docs/security-runs.md).
# 100,000 parser/checker/formatter inputs, 2 s each at most (CI runs 10,000).
fuzz: $(VENV)/.test-installed
	$(BIN)/python scripts/fuzz.py

# 50 builds killed with SIGKILL at random moments, each rebuilt and compared byte
# for byte with a clean build.
crash: $(VENV)/.installed
	$(BIN)/python scripts/crash.py

clean:
	rm -rf $(VENV) $(SDK_VENV) build dist *.egg-info
