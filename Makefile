# Two entry points: `make book` (the main job) and `make test`. Each sets itself up: the virtual
# environment, and the Debian packages they use (scripts/system_deps.sh: dataset-fashion-mnist, chromium,
# npm for the book; installed with apt-get as root or through sudo, else one line naming the fix).
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: test book grid bench venv clean system-deps test-cluster

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

test: $(STAMP)
	@bash scripts/system_deps.sh test
	$(PY) -m pytest -q tests

system-deps:
	@bash scripts/system_deps.sh book

# the smoke profile through profiles/slurm on a single-node Slurm started here (scripts/cluster/: munge, MariaDB,
# slurmdbd, slurmctld, slurmd; Debian's packages installed when missing) and stopped again, also on failure;
# the checks: tests/cluster/check_cluster.py. Runs as root (slurmd).
test-cluster: $(STAMP)
	@bash scripts/system_deps.sh test
	$(PY) -m pip install --quiet -r requirements-cluster.txt
	PY=$(PY) bash scripts/cluster/test.sh

# Part I: CIFAR-10 from the committed records in results/$(PART1) (never trained here unless TRAIN=1);
# Part II: the laptop replication, trained here by Snakemake.
PROFILE ?= quick
PART1   ?= paper
PART2   ?= $(PROFILE)
TRAIN   ?=
TRAINED  = $(if $(TRAIN),I II,II)
# CPU: one torch thread per notebook, as many notebooks as cores; on a GPU use CORES=1 THREADS=$(nproc)
THREADS ?= 1
CORES   ?= $(shell nproc 2>/dev/null || echo 1)

# run reports (Part II trains its grid) -> chapters -> the static book in _build/html
book: $(STAMP)
	@bash scripts/system_deps.sh book
	$(VENV)/bin/snakemake --cores $(CORES) --config part1=$(PART1) part2=$(PART2) "train=$(TRAINED)" \
	    threads=$(THREADS) --quiet rules
	PY=$(PY) bash scripts/book_assets.sh
	$(VENV)/bin/jupyter-book build . --warningiserror --keep-going --quiet
	@echo "book: $(CURDIR)/_build/html/index.html (Part I: $(PART1), Part II: $(PART2))"

# the same grid in one process (no notebooks): python -m kdlib grid
grid: $(STAMP)
	$(PY) -m kdlib grid --profile $(PROFILE)

# CIFAR-10 when it is in the data root, else Fashion-MNIST (Debian's, or the committed fixture)
bench: $(STAMP)
	@$(PY) -m kdlib bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache _build
