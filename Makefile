# The two commands of the README: `make book` and `make test`.
# `book` is also the package folder: without .PHONY make would call it up to date.
.PHONY: book test bench env sync clean test-colab

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

env: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

# Build the executed book into _build/html (every notebook runs: --all).
book: $(STAMP)
	$(PY) -m book.notebooks check
	$(VENV)/bin/jupyter-book build --all -W -n --keep-going .
	@echo
	@echo "Built. Open $(CURDIR)/_build/html/index.html"

# Every test, the executed book build included.
test: $(STAMP)
	$(PY) -m pytest

# Per-page execution seconds, build times and widget latencies.
bench: $(STAMP)
	$(PY) -m book.bench

# Rewrite the paired .ipynb of every chapter and exercise from its .md.
sync: $(STAMP)
	$(PY) -m book.notebooks sync

clean:
	rm -rf _build
