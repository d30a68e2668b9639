# One entry point for people and CI. `make test` works on a fresh machine:
# it makes .venv, installs the project with its dev extras, then lints,
# type-checks and runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test lint typecheck pytest demo bench bench-compare sandbox screenshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy does not understand setuptools' package-dir mapping in editable
# installs, so it checks a tree of links laid out as the installed package.
typecheck: $(STAMP)
	@mkdir -p .typecheck/closte_sync
	@for d in daemon tui shared sandbox; do ln -sfn ../../$$d .typecheck/closte_sync/$$d; done
	MYPYPATH=.typecheck $(BIN)/mypy --strict -p closte_sync

pytest: $(STAMP)
	$(BIN)/pytest -q

# The main job on the built-in sandbox: no Closte account needed.
demo: $(STAMP)
	$(BIN)/closte-sync demo

# Every bench/*.py (not _*.py): one table, and the same as JSON in bench/results/.
bench: $(STAMP)
	$(BIN)/python bench/_report.py run

# The change between two reports: `make bench-compare A B` (paths or names in
# bench/results/), or `make bench-compare A=... B=...`; none: the two newest.
ifeq (bench-compare,$(firstword $(MAKECMDGOALS)))
COMPARE_ARGS := $(wordlist 2,$(words $(MAKECMDGOALS)),$(MAKECMDGOALS))
ifneq ($(COMPARE_ARGS),)
$(eval $(COMPARE_ARGS):;@:)
endif
endif

bench-compare: $(STAMP)
	$(BIN)/python bench/_report.py compare $(COMPARE_ARGS) $(A) $(B)

# The TUI screenshots in docs/, taken of the demo's real daemon.
screenshots: $(STAMP)
	$(BIN)/python docs/screenshots.py

sandbox: $(STAMP)
	$(BIN)/closte-sync sandbox

clean:
	rm -rf $(VENV) .typecheck .mypy_cache .pytest_cache .ruff_cache build *.egg-info
