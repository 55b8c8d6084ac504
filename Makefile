# The two commands of the README: `make book` and `make test`.
# `book` is also the package folder: without .PHONY make would call it up to date.
.PHONY: book test bench env sync colab lab clean test-colab colab-env instructor-bundle

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

# A second environment with Colab's versions (ipywidgets 7.7.1, IPython 7.34, …): `make test` uses it
# to check that installing the package changes none of them, and to run every notebook and widget test.
COLAB_VENV := .venv-colab
COLAB_STAMP := $(COLAB_VENV)/.installed
colab-env: $(COLAB_STAMP)
$(COLAB_STAMP): requirements-colab.txt
	test -x $(COLAB_VENV)/bin/python || $(PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-colab.txt
	touch $(COLAB_STAMP)

# Only the Colab-parity tests (they are also part of `make test`).
test-colab: $(STAMP) $(COLAB_STAMP)
	$(PY) -m pytest tests/test_colab_parity.py

# Build the executed book into _build/html (every notebook runs: --all), then render the chapters'
# notebooks for Jupyter and Colab with the numbers this build computed.
# `make book EDITION=course`: the course edition, for a class that hands the exercises in: the same site with no
# solutions, model answers or rubrics (exercise pages as the student notebooks show them), in _build/course/html.
EDITION ?= public
book: $(STAMP)
	$(PY) -m book.authoring.notebooks check-install
	$(PY) -m book.authoring.exercise_pages check
ifeq ($(EDITION),course)
	$(PY) -m book.authoring.editions course _build/course-src
	$(VENV)/bin/jupyter-book build --all -W -n --keep-going _build/course-src --path-output _build/course
	@echo
	@echo "Built the course edition. Open $(CURDIR)/_build/course/_build/html/index.html"
else ifeq ($(EDITION),public)
	# --all re-reads every page, but myst-nb's execution cache would still skip a page whose code is unchanged
	# even when a recorded run or the package changed under it: drop the cache so every page really runs.
	rm -rf _build/.jupyter_cache
	$(VENV)/bin/jupyter-book build --all -W -n --keep-going .
	$(PY) -m book.authoring.notebooks colab
	@echo
	@echo "Built. Open $(CURDIR)/_build/html/index.html"
else
	$(error EDITION is public (the default) or course)
endif

# For instructors only: solution notebooks, rubrics, hidden tests, a marking guide, gradebook templates for
# Canvas and Moodle, and each exercise's Gradescope zip, in _build/instructor-bundle (and its .zip).
instructor-bundle: $(STAMP)
	$(PY) -m book.authoring.instructor_bundle --out _build/instructor-bundle

# Only the notebooks' rendering, from the last build's numbers (after `make book`).
colab: $(STAMP)
	$(PY) -m book.authoring.notebooks colab

# The course in JupyterLab, with its environment's kernel: open chapters/ or exercises/ and run a notebook.
# Extra options for JupyterLab go in LAB_ARGS (e.g. `make lab LAB_ARGS="--no-browser --port 8890"`).
LAB_ARGS ?=
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=$(CURDIR) $(LAB_ARGS) chapters/01_degradation.ipynb

# Every test, the executed book build included.
test: $(STAMP) $(COLAB_STAMP)
	$(PY) -m pytest

# Per-page execution seconds, build times and widget latencies.
bench: $(STAMP)
	$(PY) -m book.authoring.bench --build --json _build/bench.json

# After a change of prose or of code a chapter shows: the install cells, the shown code, every chapter's notebook
# with the numbers it holds, and the exercise pages and student notebooks from exercises/source.
sync: $(STAMP)
	$(PY) -m book.authoring.notebooks sync
	$(PY) -m book.authoring.exercise_pages build

clean:
	rm -rf _build
