# Two entry points: `make book` (the main job) and `make test`. Each sets itself up.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: test book bench venv clean

venv: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

book: $(STAMP)
	@echo "The book pipeline (issues 4 and 5) is not built yet; 'make test' exercises kdlib." >&2
	@exit 2

bench: $(STAMP)
	$(PY) -m kdlib bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
