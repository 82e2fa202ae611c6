# Two entry points: `make book` (the main job) and `make test`. Each sets itself up.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: test book grid bench venv clean

venv: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

PROFILE ?= quick
# CPU: one torch thread per notebook, as many notebooks as cores; on a GPU use CORES=1 THREADS=$(nproc)
THREADS ?= 1
CORES   ?= $(shell nproc 2>/dev/null || echo 1)

# grid (Snakemake: teacher notebooks -> student notebooks) then the static book in _build/html
book: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES) --config profile=$(PROFILE) threads=$(THREADS) --quiet rules
	PY=$(PY) bash scripts/book_assets.sh
	$(VENV)/bin/jupyter-book build . --warningiserror --keep-going --quiet
	@echo "book: $(CURDIR)/_build/html/index.html (profile $(PROFILE))"

# the same grid in one process (no notebooks): python -m kdlib grid
grid: $(STAMP)
	$(PY) -m kdlib grid --profile $(PROFILE)

bench: $(STAMP)
	$(PY) -m kdlib bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache _build
