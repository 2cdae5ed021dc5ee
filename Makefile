# One-command set-up and the project's entry points. Every target installs first (idempotent).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export NORANK_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: install demo test bench results clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,faiss]'
	touch $(STAMP)

demo: install
	$(PY) -m norank reproduce --quick --out demo_results

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) -m benchmarks

results: install
	$(PY) -m norank reproduce --out docs/results_run && $(PY) -m norank.experiments.publish docs/results_run docs

clean:
	rm -rf $(VENV) demo_results .pytest_cache
