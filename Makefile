# `make book` and `make test` do everything on a fresh machine; see the README.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CHAPTER_SOURCES := $(sort $(wildcard chapters/*.md))

# Notebooks run with their own working directory: make a relative mirror path absolute.
ifneq ($(BOOK_DATA_MIRROR),)
export BOOK_DATA_MIRROR := $(abspath $(BOOK_DATA_MIRROR))
endif

.PHONY: book test data execute sync clean setup

book: data  ## Execute every chapter and build the website in _build/html
	rm -rf _build/html  # no pages left over from earlier builds
	$(BIN)/jupyter-book build --all --warningiserror --nitpick --keep-going .

test: book  ## Build the site, then: unit tests, notebook checks, nbval over every chapter, site and browser tests
	$(BIN)/pytest tests chapters --nbval --nbval-current-env

setup: $(INSTALLED)

$(INSTALLED): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	touch $@

data: setup  ## Fetch (or copy from $BOOK_DATA_MIRROR) and verify every file in data/registry.json
	$(BIN)/torchbook-fetch

execute: data  ## Re-execute the .md sources and rewrite the paired .ipynb with fresh outputs
	$(BIN)/python -m torchbook.notebooks execute $(CHAPTER_SOURCES)

sync: setup  ## Bring each .md/.ipynb pair in line with whichever of the two was edited last
	$(BIN)/jupytext --sync $(CHAPTER_SOURCES)

clean:  ## Remove the built site (keeps .venv and the data cache)
	rm -rf _build
