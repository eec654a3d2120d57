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
# Two other machines, simulated on this one, each differing from ours in two ways (see running.md,
# "On other machines"): a laptop, with AVX2 and no AVX-512 (PyTorch, oneDNN and MKL all at AVX2;
# ours run AVX-512) and four threads; and a one-CPU container on an older CPU without AVX2, simulated
# twice side by side (a pytest-xdist worker and its kernels on each of CPUs 0 and 1, each half the chapters).
# OMP_NUM_THREADS=4 alone still gives two threads here (PyTorch 2.14.1): the laptop's kernels start with
# tools/simulated_machines/four_threads.py, which asks for four (OMP_WAIT_POLICY only saves time). The laptop
# also runs in two pytest-xdist workers, each on one CPU with its four threads: the same four-way split of
# work and sums, in 15 minutes here instead of 21 for one process with four threads on two cores.
LAPTOP_IPYTHON := $(abspath _build/simulated-laptop-ipython)
LAPTOP := ATEN_CPU_CAPABILITY=avx2 DNNL_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 OMP_WAIT_POLICY=PASSIVE IPYTHONDIR=$(LAPTOP_IPYTHON)
# Two such containers side by side, CPUs 0 and 1, one pytest-xdist worker and its kernels on each.
OLD_ONE_CPU_CONTAINERS := ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=AVX DNNL_MAX_CPU_ISA=AVX taskset -c 0,1
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
	else echo "the site's front pages link PDFs that are not there yet: run make pdf"; fi
PDF_BUILD := BOOK_OUTPUTS=stored $(BIN)/jupyter-book build --builder pdflatex --all --warningiserror --nitpick --keep-going
# Tests that need neither an executed chapter nor the built site.
QUICK_TESTS := tests --ignore=tests/test_site.py --ignore=tests/test_alone.py -m "not kernel"

# Notebooks run with their own working directory: make a relative mirror path absolute.
ifneq ($(BOOK_DATA_MIRROR),)
export BOOK_DATA_MIRROR := $(abspath $(BOOK_DATA_MIRROR))
endif

.PHONY: book pdf test test-other-machines tolerances check site-from-stored korean-site translations translation-status data execute sync clean setup lock

book: data  ## Execute every chapter from its .md source and build the website in _build/html, the Korean edition in _build/html/ko
	rm -rf _build/html  # no pages left over from earlier builds
	$(JUPYTER_BOOK_BUILD)
	$(MAKE) --no-print-directory korean-site
	$(MAKE) --no-print-directory pdf

# Each chapter executes once: nbval runs every stored notebook and compares its outputs, and
# the site is then built from those verified outputs (see running.md, "How the book is tested").
# On a reader's machine that run is the test on another machine; the project's CI also runs
# `make test-other-machines`.
test: data  ## Unit and notebook checks, nbval over every chapter once, then both editions' site and PDF, and their tests
	$(NBVAL) $(IN_PARALLEL) --dist loadfile tests chapters --ignore=tests/test_site.py --ignore=tests/test_pdf.py
	$(MAKE) --no-print-directory site-from-stored
	$(MAKE) --no-print-directory pdf
	$(BIN)/pytest $(IN_PARALLEL) --dist load tests/test_site.py tests/test_pdf.py

test-other-machines: data  ## nbval over every chapter as two other machines would run it (the project's CI runs this after make test)
	@command -v taskset >/dev/null || { echo "taskset (util-linux) is missing: it simulates the one-CPU machine"; exit 1; }
	@taskset -c 0,1 true 2>/dev/null || { echo "the one-CPU containers are simulated on CPUs 0 and 1: this machine does not let us use both"; exit 1; }
	mkdir -p $(LAPTOP_IPYTHON)/profile_default/startup
	cp tools/simulated_machines/four_threads.py $(LAPTOP_IPYTHON)/profile_default/startup/
	$(LAPTOP) OMP_NUM_THREADS=1 taskset -c 0 $(BIN)/ipython -c "import torch; assert torch.get_num_threads() == 4, 'the laptop is not simulated'"  # as a pinned worker's kernel
	$(LAPTOP) $(NBVAL) -p tools.cpu_shares -n 2 --dist loadfile chapters
	$(OLD_ONE_CPU_CONTAINERS) $(NBVAL) -p tools.cpu_shares -n 2 --dist loadfile chapters

tolerances: data  ## Re-derive the chapters' nbval tolerances from perturbed runs (CHAPTERS=... for some; slow: each chapter runs TOLERANCE_RUNS more times)
	$(BIN)/python -m tools.tolerances derive --runs $(TOLERANCE_RUNS) $(or $(CHAPTERS),$(CHAPTER_SOURCES))
	$(BIN)/python -m tools.translation sync  # the Korean notebooks take the new metadata

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
	@command -v xelatex >/dev/null && command -v latexmk >/dev/null && kpsewhich kotex.sty >/dev/null \
	  || { echo "make pdf needs XeLaTeX, latexmk and kotex: see README, 'The PDFs'"; exit 1; }
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

execute: data  ## Re-execute the .md sources and rewrite the paired .ipynb with fresh outputs
	$(BIN)/python -m tools.notebooks execute $(CHAPTER_SOURCES)
	$(BIN)/python -m tools.translation sync  # the Korean notebooks take the new outputs

sync: setup  ## Bring each .md/.ipynb pair in line with whichever of the two was edited last
	$(BIN)/jupytext --sync $(CHAPTER_SOURCES)
	$(BIN)/python -m tools.translation sync

clean:  ## Remove the built site (keeps .venv and the data cache)
	rm -rf _build
