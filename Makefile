# `make book` and `make test` do everything on a fresh machine; see the README.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CHAPTER_SOURCES := $(sort $(wildcard chapters/*.md))
JUPYTER_BOOK_BUILD := $(BIN)/jupyter-book build --all --warningiserror --nitpick --keep-going .
# nbval, with the numeric tolerances that cells declare in their metadata (tools/nbval_tolerance.py).
NBVAL := $(BIN)/pytest -p tools.nbval_tolerance --nbval --nbval-current-env
# make test runs its tests in two pytest-xdist workers where there are two CPUs or more, each notebook
# whole in one worker, each worker and its kernels on their own half of the CPUs (tools/cpu_shares.py).
USABLE_CPUS = $(shell $(PYTHON) -c 'import os; print(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)')
TEST_WORKERS ?= $(if $(filter 0 1,$(USABLE_CPUS)),0,2)
IN_PARALLEL := -p tools.cpu_shares -n $(TEST_WORKERS)
# Two other machines, simulated on this one (tools/other_machines.py; running.md, "On other machines"):
# nbval re-runs a chapter there only where its recorded pass no longer matches (ALL=1: every chapter).
OTHER_MACHINES := $(BIN)/python -m tools.other_machines $(if $(filter 1,$(ALL)),--all)
# The chapters' tolerances, derived from perturbed runs (tools/tolerances.py; chapters/tolerances.json).
TOLERANCE_RUNS ?= 4
# The Korean edition (ko/): built from the stored, nbval-verified outputs, never executed, into _build/html/ko.
KOREAN_CONFIG := _build/ko-config.yml
KOREAN_BUILD := BOOK_OUTPUTS=stored $(BIN)/jupyter-book build ko --config $(KOREAN_CONFIG) --path-output _build/ko --all --warningiserror --nitpick --keep-going
# The PDFs (make pdf): each edition through Jupyter Book's LaTeX route, from the stored outputs, named
# by each edition's configuration (latex_documents' targetname), and published beside its front page.
PDF_NAME := $(basename $(shell sed -n 's/^ *targetname: *//p' _config.yml))
KOREAN_PDF_NAME := $(basename $(shell sed -n 's/^ *targetname: *//p' ko/edition.yml))
PUBLISH_PDFS := if [ -f _build/pdf/$(PDF_NAME).pdf ] && [ -d _build/html/ko ]; then \
	cp _build/pdf/$(PDF_NAME).pdf _build/html/ && cp _build/pdf/$(KOREAN_PDF_NAME).pdf _build/html/ko/; \
	fi  # without them, the front pages' links to the PDFs are broken until make pdf
# make book and make test build the PDFs where XeLaTeX, latexmk and kotex are installed; elsewhere they say
# so in one line and do everything else. BOOK_REQUIRE_PDFS=1 (.ci/run sets it) makes their absence an error.
PDF_TOOLS_FOUND := command -v xelatex >/dev/null && command -v latexmk >/dev/null && kpsewhich kotex.sty >/dev/null
WITH_PDFS := $(or $(filter 1,$(BOOK_REQUIRE_PDFS)),$(shell $(PDF_TOOLS_FOUND) 2>/dev/null && echo yes))
SKIPPING_PDFS := echo "skipping the PDFs: they need XeLaTeX, latexmk and kotex (on Debian or Ubuntu: apt-get install --no-install-recommends $$(tr '\n' ' ' < .ci/pdf-packages.txt); see README, 'The PDFs')"
PDF_BUILD := BOOK_OUTPUTS=stored $(BIN)/jupyter-book build --builder pdflatex --all --warningiserror --nitpick --keep-going
# Tests that need neither an executed chapter nor the built site.
QUICK_TESTS := tests --ignore=tests/test_site.py --ignore=tests/test_alone.py -m "not kernel"

# Notebooks run with their own working directory: make a relative mirror path absolute.
ifneq ($(BOOK_DATA_MIRROR),)
export BOOK_DATA_MIRROR := $(abspath $(BOOK_DATA_MIRROR))
endif

.PHONY: book pdf test test-other-machines nbval tolerances real-changes check site-from-stored korean-site translations translation-status data execute sync clean setup lock

book: data  ## Execute every chapter from its .md source and build the website in _build/html, the Korean edition in _build/html/ko
	rm -rf _build/html  # no pages left over from earlier builds
	$(JUPYTER_BOOK_BUILD)
	$(MAKE) --no-print-directory korean-site
	@$(if $(WITH_PDFS),$(MAKE) --no-print-directory pdf,$(SKIPPING_PDFS))

# Each chapter executes once: nbval runs every stored notebook and compares its outputs, and
# the site is then built from those verified outputs (see running.md, "How the book is tested").
# On a reader's machine that run is the test on another machine; the project's CI also runs
# `make test-other-machines`.
test: data  ## Unit and notebook checks, nbval over every chapter once, then both editions' site and PDF (where XeLaTeX is), and their tests
	$(NBVAL) $(IN_PARALLEL) --dist loadfile tests chapters --ignore=tests/test_site.py --ignore=tests/test_pdf.py
	$(MAKE) --no-print-directory site-from-stored
	@$(if $(WITH_PDFS),$(MAKE) --no-print-directory pdf,$(SKIPPING_PDFS))
	$(if $(WITH_PDFS),,BOOK_WITHOUT_PDFS=1) $(BIN)/pytest $(IN_PARALLEL) --dist load tests/test_site.py $(if $(WITH_PDFS),tests/test_pdf.py)

test-other-machines: data  ## nbval over the chapters as two other machines would run them, where something changed since their recorded pass (ALL=1: all)
	$(OTHER_MACHINES)

nbval: data  ## nbval over every chapter on this machine, and nothing else (the weekly workflow on real machines); _build/nbval-report.json: how close each cell came to its tolerance
	mkdir -p _build
	$(NBVAL) --nbval-tolerance-report=_build/nbval-report.json chapters

tolerances: data  ## Re-derive the chapters' nbval tolerances from perturbed runs (CHAPTERS=... for some; slow: each chapter runs TOLERANCE_RUNS more times)
	$(BIN)/python -m tools.tolerances derive --runs $(TOLERANCE_RUNS) $(or $(CHAPTERS),$(CHAPTER_SOURCES))
	$(BIN)/python -m tools.translation sync  # the Korean notebooks take the new metadata

real-changes: data  ## Audit what each tolerance still catches: copies of the chapters with their learning rates changed (CHAPTERS=... for some; slow)
	$(BIN)/python -m tools.real_changes $(or $(CHAPTERS),$(CHAPTER_SOURCES))

check: data  ## The quick tests alone (data layer, notebook tooling, chapter hygiene): no kernel, no site
	$(BIN)/pytest $(QUICK_TESTS)

# Both editions at once: two Sphinx processes, each mostly on one core, so the Korean edition
# adds little to the time the site takes (its log is shown if it fails).
site-from-stored: data  ## Build both editions of the website from the stored chapter outputs, without executing the chapters
	rm -rf _build/html _build/ko _build/ko-build.log
	$(BIN)/python -m tools.translation config $(KOREAN_CONFIG)
	$(KOREAN_BUILD) > _build/ko-build.log 2>&1 & korean=$$!; \
	BOOK_OUTPUTS=stored $(JUPYTER_BOOK_BUILD); english=$$?; \
	wait $$korean || { cat _build/ko-build.log; echo "the Korean edition's build failed (log above)"; exit 1; }; \
	exit $$english
	mv _build/ko/_build/html _build/html/ko
	@$(PUBLISH_PDFS)

# Both editions at once, each mostly one XeLaTeX process on one core (the Korean log is shown if it
# fails); the PDFs land in _build/pdf and beside each edition's front page, which links them.
pdf: data  ## Both editions as PDFs, typeset with XeLaTeX from the stored outputs: _build/pdf/$(PDF_NAME).pdf and $(KOREAN_PDF_NAME).pdf
	@$(PDF_TOOLS_FOUND) || { echo "make pdf needs XeLaTeX, latexmk and kotex: see README, 'The PDFs'"; exit 1; }
	rm -rf _build/latex _build/ko/_build/latex _build/pdf _build/ko-pdf.log
	$(BIN)/python -m tools.translation config $(KOREAN_CONFIG)
	$(PDF_BUILD) ko --config $(KOREAN_CONFIG) --path-output _build/ko > _build/ko-pdf.log 2>&1 & korean=$$!; \
	$(PDF_BUILD) .; english=$$?; \
	wait $$korean || { cat _build/ko-pdf.log; echo "the Korean PDF's build failed (log above)"; exit 1; }; \
	exit $$english
	mkdir -p _build/pdf
	cp $(addprefix _build/latex/$(PDF_NAME),.pdf .tex .log) $(addprefix _build/ko/_build/latex/$(KOREAN_PDF_NAME),.pdf .tex .log) _build/pdf/
	@$(PUBLISH_PDFS)

korean-site: setup  ## Build the Korean edition into _build/html/ko from the stored outputs (after the English site)
	$(BIN)/python -m tools.translation config $(KOREAN_CONFIG)
	rm -rf _build/ko _build/html/ko
	$(KOREAN_BUILD)
	mv _build/ko/_build/html _build/html/ko
	@$(PUBLISH_PDFS)

translations: setup  ## Copy each English page's code and stored outputs into its Korean twin in ko/ (after make execute)
	$(BIN)/python -m tools.translation sync

translation-status: setup  ## Translated/total passages per page of the Korean edition, and which are stale or missing
	$(BIN)/python -m tools.translation status

setup: $(INSTALLED)

$(INSTALLED): requirements.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt -e .
	touch $@

lock:  ## Regenerate constraints.txt from a throwaway environment built from requirements.txt alone
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet -r requirements.txt
	{ sed -n '/^#/p' constraints.txt; .venv-lock/bin/python -m pip freeze --exclude-editable \
	  | sed "s/\$$/ ; python_version == \"$$(.venv-lock/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')\"/"; } > constraints.new
	mv constraints.new constraints.txt
	rm -rf .venv-lock

data: setup  ## Fetch (or copy from $BOOK_DATA_MIRROR) and verify every file and folder in data/registry.json
	$(BIN)/torchbook-fetch

execute: data  ## Re-execute the .md sources and rewrite the paired .ipynb with fresh outputs (CHAPTERS=... for some)
	$(BIN)/python -m tools.notebooks execute $(or $(CHAPTERS),$(CHAPTER_SOURCES))
	$(BIN)/python -m tools.translation sync  # the Korean notebooks take the new outputs

sync: setup  ## Bring each .md/.ipynb pair in line with whichever of the two was edited last
	$(BIN)/jupytext --sync $(CHAPTER_SOURCES)
	$(BIN)/python -m tools.translation sync

clean:  ## Remove the built site (keeps .venv and the data cache)
	rm -rf _build
