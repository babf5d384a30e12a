# Two commands on a fresh machine:  `make book`  and  `make test`.
# Everything they need is installed into .venv from requirements.txt (then pglib, editable).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JB := $(VENV)/bin/jupyter-book
NOTEBOOKS := $(sort $(wildcard book/*.ipynb))
# nbval outputs are trusted by the build only for this exact pglib + notebooks + pins.
SOURCE_HASH = $(shell cat pglib/*.py $(NOTEBOOKS) requirements.txt | sha256sum | cut -c1-16)
VERIFIED = _build/.verified-$(SOURCE_HASH)
PYTEST := $(PY) -m pytest -p no:cacheprovider
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg
export PYTHONHASHSEED := 0
export MPLBACKEND := Agg
export OMP_NUM_THREADS ?= 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup book test test-unit test-notebooks test-html browser-deps execute sync-setup-cell bench clean

help:
	@echo "make book    build the HTML book into _build/html (sets up .venv on first use)"
	@echo "make test    run every test: units, notebooks (nbval), built HTML in Chromium, Colab path"
	@echo "make execute re-execute every chapter notebook in place (after changing pglib)"
	@echo "make bench   run the benchmarks in benchmarks/"

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
	$(PYTEST) -n 2 --dist loadfile $(NBVAL) $(NOTEBOOKS)
	@mkdir -p _build && rm -f _build/.verified-* && touch $@

book: $(VERIFIED)
	$(JB) build . -W --keep-going
	@echo
	@echo "Book built. Open: file://$(CURDIR)/_build/html/index.html"

test-unit: $(STAMP)
	$(PYTEST) -n 2 --dist loadfile -m "not browser and not colab and not gpu" tests $(NBVAL) $(NOTEBOOKS)
	@mkdir -p _build && rm -f _build/.verified-* && touch $(VERIFIED)

browser-deps:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian's chromium for the browser test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "Missing: the 'chromium' browser (Debian package 'chromium'). Install it, e.g. 'sudo apt-get install chromium'."; exit 1; \
	  fi; }

test-html: $(STAMP) browser-deps
	$(JB) build . -W --keep-going
	$(PYTEST) -n 2 -m "browser or colab or gpu" tests

test: test-unit test-html

execute: $(STAMP)
	for nb in $(NOTEBOOKS); do \
	  $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=600 "$$nb" || exit 1; \
	done

sync-setup-cell: $(STAMP)
	$(PY) tests/setup_cell.py --write $(NOTEBOOKS)

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf _build
