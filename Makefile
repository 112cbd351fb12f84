# Two commands for a new user: `make run` (set up and run the portal) and `make test` (the whole suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install lint format clean-var bench-serving

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[ml,local,dev]'
	# Keras 2 (tf_keras) is used only by tests, to write model files the way the paper's app did.
	# Its wheel requires the `tensorflow` distribution, which would add a second TensorFlow next
	# to tensorflow-cpu; the module it imports is already installed, so it goes in without deps.
	$(PY) -m pip install --quiet --no-deps tf-keras==2.21.0
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m deploy.run_local

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Serving benchmark (not part of the tests): results into docs/performance.md's table and
# docs/benchmarks/serving.json. Needs ../shared (real photos, ImageNet weights).
bench-serving: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) -m bench.serving $(BENCH_ARGS)

clean-var:
	rm -rf var
