# `make book` and `make test` do everything on a fresh machine; see the README.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CHAPTER_SOURCES := $(sort $(wildcard chapters/*.md))
JUPYTER_BOOK_BUILD := $(BIN)/jupyter-book build --all --warningiserror --nitpick --keep-going .
# Tests that need neither an executed chapter nor the built site.
QUICK_TESTS := tests --ignore=tests/test_site.py --ignore=tests/test_alone.py -m "not kernel"

# Notebooks run with their own working directory: make a relative mirror path absolute.
ifneq ($(BOOK_DATA_MIRROR),)
export BOOK_DATA_MIRROR := $(abspath $(BOOK_DATA_MIRROR))
endif

.PHONY: book test check site-from-stored data execute sync clean setup

book: data  ## Execute every chapter from its .md source and build the website in _build/html
	rm -rf _build/html  # no pages left over from earlier builds
	$(JUPYTER_BOOK_BUILD)

# Each chapter executes once: nbval runs every stored notebook and compares its outputs, and
# the site is then built from those verified outputs (see running.md, "How the book is tested").
test: data  ## Unit and notebook checks, nbval over every chapter, then the site from the verified outputs and its browser tests
	$(BIN)/pytest tests chapters --ignore=tests/test_site.py --nbval --nbval-current-env
	$(MAKE) --no-print-directory site-from-stored
	$(BIN)/pytest tests/test_site.py

check: data  ## The quick tests alone (data layer, notebook tooling, chapter hygiene): no kernel, no site
	$(BIN)/pytest $(QUICK_TESTS)

site-from-stored: data  ## Build the website from the stored chapter outputs, without executing the chapters
	rm -rf _build/html
	BOOK_OUTPUTS=stored $(JUPYTER_BOOK_BUILD)

setup: $(INSTALLED)

$(INSTALLED): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	touch $@

data: setup  ## Fetch (or copy from $BOOK_DATA_MIRROR) and verify every file and folder in data/registry.json
	$(BIN)/torchbook-fetch

execute: data  ## Re-execute the .md sources and rewrite the paired .ipynb with fresh outputs
	$(BIN)/python -m tools.notebooks execute $(CHAPTER_SOURCES)

sync: setup  ## Bring each .md/.ipynb pair in line with whichever of the two was edited last
	$(BIN)/jupytext --sync $(CHAPTER_SOURCES)

clean:  ## Remove the built site (keeps .venv and the data cache)
	rm -rf _build
