# Two commands on a fresh machine:  `make book`  and  `make test`.
# Everything they need is installed into .venv from requirements.txt (then pglib, editable).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JB := $(VENV)/bin/jupyter-book
NOTEBOOKS := $(sort $(wildcard book/*.ipynb))
# nbval outputs are trusted by the build only for this exact pglib + notebooks + pins + sanitizers.
SOURCE_HASH = $(shell cat $(sort $(shell find pglib -name '*.py')) $(NOTEBOOKS) requirements.txt tests/nbval_sanitize.cfg | sha256sum | cut -c1-16)
VERIFIED = _build/.verified-$(SOURCE_HASH)
# Record that the notebooks passed nbval for this source (drops stamps of older sources).
MARK_VERIFIED = mkdir -p _build && rm -f _build/.verified-* && touch $(VERIFIED)
PYTEST := $(PY) -m pytest -p no:cacheprovider
# Two workers, one test file per worker (module fixtures are built once).
XDIST := -n 2 --dist loadfile
# tests/nbval_semicolon.py: a trailing `;` hides a cell's value under nbval as in Jupyter.
NBVAL := -p tests.nbval_semicolon --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg
# Always a full, strict rebuild: an incremental Sphinx build does not re-read unchanged
# pages, so it would not repeat their warnings and -W would pass a broken book.
JB_BUILD := $(JB) build . -W --keep-going --all
# The book and its reference volume as two PDFs: the single-page HTML build printed by Chromium (tools/pdf.py).
SINGLEHTML := $(JB) build . -W --keep-going --builder singlehtml
PDF_PRINT = CHROMIUM=$(CHROMIUM) $(PY) tools/pdf.py
PDF_BUILD = $(SINGLEHTML) --all && $(PDF_PRINT)
CHROMIUM ?= /usr/bin/chromium
export PYTHONHASHSEED := 0
# Do not export MPLBACKEND=Agg: kernels inherit it and then draw no inline figures,
# so `make execute` would commit notebooks without their plots.
export OMP_NUM_THREADS ?= 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup book pdf test test-unit test-notebooks test-paths test-html browser-deps execute sync-setup-cell bench audit clean

help:
	@echo "make book            build the HTML book into _build/html (sets up .venv on first use)"
	@echo "make pdf             two PDFs: the book (_build/pdf/book.pdf) and the reference volume"
	@echo "                     (_build/pdf/reference.pdf: API, ledger, audit, calibration), copied into _build/html"
	@echo "make test            every test: units + notebooks (nbval), build, built HTML in Chromium, Colab path"
	@echo "make execute         re-run every chapter notebook in place (after changing pglib);"
	@echo "                     one chapter: make execute NOTEBOOKS=book/03_x.ipynb"
	@echo "make test-notebooks  only re-check the notebooks' stored outputs (nbval)"
	@echo "make test-paths      re-check them under two other floating-point arithmetic paths"
	@echo "make bench           run the benchmarks in benchmarks/"
	@echo "make audit           every chapter at 30 unseen seeds on Ray (resumes), book/audit.md,"
	@echo "                     and the slow calibrations; AUDIT_SEEDS=N AUDIT_WORKERS=N, RAY_ADDRESS"

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

setup: $(STAMP)

# Notebooks are executed by nbval against their committed outputs; the build then
# renders those verified outputs (execute_notebooks: off). The stamp is keyed on
# pglib's source, so a change to pglib forces the check again before a build.
$(VERIFIED): $(STAMP)
	$(if $(NOTEBOOKS),$(PYTEST) $(XDIST) $(NBVAL) $(NOTEBOOKS),@echo "No notebooks in book/ to verify.")
	@$(MARK_VERIFIED)

book: $(VERIFIED)
	$(JB_BUILD)
	@echo
	@echo "Book built. Open: file://$(CURDIR)/_build/html/index.html"

# For lecturers: one PDF with typeset math, figures and working internal links, printed
# offline by the Chromium of the browser test; copied into _build/html if the book is built.
pdf: $(VERIFIED) browser-deps
	$(PDF_BUILD)

test-notebooks: $(STAMP)
	@rm -f $(VERIFIED)
	@$(MAKE) --no-print-directory $(VERIFIED)

test-unit: $(STAMP)
	$(PYTEST) $(XDIST) -m "not browser and not colab and not gpu and not slow" tests $(NBVAL) $(NOTEBOOKS)
	@$(MARK_VERIFIED)

# The browser test drives Debian's chromium through Playwright; it never downloads a browser.
# The PDF test reads the printed book with pdfinfo/pdftotext (Debian's poppler-utils).
browser-deps:
	@{ test -x $(CHROMIUM) && command -v pdftotext >/dev/null && command -v pdfinfo >/dev/null; } || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian's chromium and poppler-utils for the browser and PDF tests (about a minute)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils >/dev/null; \
	  else \
	    echo "Missing: $(CHROMIUM) or pdftotext/pdfinfo, needed by tests/test_browser.py and tests/test_pdf.py."; \
	    echo "Install Debian's 'chromium' and 'poppler-utils' packages (sudo apt-get install chromium poppler-utils)"; \
	    echo "or run: make test CHROMIUM=/path/to/chromium"; exit 1; \
	  fi; }

# The built pages in Chromium and the Colab path run side by side (one file per worker).
# The PDF's single page reuses the sources the strict build has just read (and warned about).
test-html: $(STAMP) browser-deps
	$(JB_BUILD)
	$(SINGLEHTML) && $(PDF_PRINT)
	CHROMIUM=$(CHROMIUM) $(PYTEST) $(XDIST) -m "browser or colab or gpu" tests

# The same text on every machine: every chapter again, under one of two other floating-point
# arithmetic paths (MKL, torch and numpy kernels, thread count; tools/arith_paths.py --show),
# the two halves side by side; each must print exactly its committed outputs.
test-paths: $(STAMP)
	$(if $(NOTEBOOKS),$(PY) tools/arith_paths.py $(NOTEBOOKS),@echo "No notebooks in book/ to check.")

test: test-unit test-paths test-html

# Re-run every notebook in place (kernel in book/, no timestamps written); then
# `make test` or `make book` checks the new outputs again. One notebook: make execute NOTEBOOKS=book/03_x.ipynb
execute: $(STAMP)
	$(PY) tools/execute_notebooks.py $(NOTEBOOKS)

sync-setup-cell: $(STAMP)
	$(PY) tools/setup_cell.py --write $(NOTEBOOKS)

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

# The seed audit (tools/audit.py): each chapter x seed is one Ray task, on a local instance of
# AUDIT_WORKERS CPUs or, with RAY_ADDRESS set, on that cluster. Results append to AUDIT_OUT, so
# a rerun resumes; then the appendix page book/audit.md, then the slow calibration tests.
AUDIT_SEEDS ?= 30
# 1000 + k: the development seeds; a held-out pass on the final chapters starts at 2000:
#   make audit AUDIT_FIRST_SEED=2000 AUDIT_OUT=benchmarks/results/audit_heldout
AUDIT_FIRST_SEED ?= 1000
AUDIT_WORKERS ?= 2
AUDIT_OUT ?= benchmarks/results/audit
audit: $(STAMP)
	$(PY) tools/audit.py --seeds $(AUDIT_SEEDS) --first-seed $(AUDIT_FIRST_SEED) --workers $(AUDIT_WORKERS) --out $(AUDIT_OUT)
	$(PY) tools/audit_report.py $(AUDIT_OUT)
	$(PY) tools/calibration.py
	$(PYTEST) -m slow tests

clean:
	rm -rf _build
