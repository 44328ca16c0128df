# Two commands on a fresh machine: `make demo` (the main job) and `make test`.
# Each creates the virtual environment with pip on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.byzsim-installed

.PHONY: demo test test-all bench install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e ".[test]"
	@touch $@

demo: $(STAMP)
	$(PY) -m simulator grid examples/demo.toml --output results/runs/demo --jobs 2
	$(PY) -m simulator report results/runs/demo

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ""

bench: $(STAMP)
	$(PY) benchmarks/aggregators.py
	$(PY) benchmarks/engines.py
	$(PY) benchmarks/attack_costs.py
	$(PY) benchmarks/step.py
	$(PY) benchmarks/grid.py
	$(PY) benchmarks/entry_points.py

clean:
	rm -rf $(VENV) results/runs
