# Newcomer commands (see README.md):  make demo  |  make test
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.aics-installed

.PHONY: setup demo test lint format bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt scripts/setup.sh
	bash scripts/setup.sh $(VENV)
	touch $(STAMP)

# Sets everything up, then runs the main job: the VAE recipe on offline data.
demo: setup
	PATH="$(abspath $(VENV))/bin:$$PATH" bash recipes/vae/run.sh

# Sets everything up, then runs lint and the whole test suite.
test: setup lint
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Speed and memory targets live here, never in timed tests.
bench: setup
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
