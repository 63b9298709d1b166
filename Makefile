# learnloop — two set-up commands on a fresh machine: `make demo` and `make test`.
# `make demo PORT=8080` (or HOST=0.0.0.0) serves the demo elsewhere; `make serve` takes the same.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
EXTRAS ?= dev,postgres,redis,explain,ray,torch
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install demo test lint typecheck unit serve clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

## demo: install, prepare the demo model and serve it on $(HOST):$(PORT) (Ctrl-C stops)
demo: install
	$(BIN)/learnloop demo --host $(HOST) --port $(PORT)

## test: install if needed, then lint, type-check and run the whole test suite
test: install lint typecheck unit

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/python -m pytest -q

serve: install
	$(BIN)/learnloop serve --host $(HOST) --port $(PORT)

clean:
	rm -rf $(VENV) .learnloop .pytest_cache .mypy_cache .ruff_cache

## bench-serving: learnloop vs MLServer vs BentoML on one scikit-learn model; writes
## benchmarks/results/serving.json (BENCH_ARGS=--quick for a smoke run; see benchmarks/serving/README.md)
.PHONY: bench-serving
bench-serving: install
	PYTHON=$(PYTHON) benchmarks/serving/peers.sh
	$(BIN)/python benchmarks/serving/run.py $(BENCH_ARGS)

## bench-feedback: feedback ingestion (batch events/min, single req/s, p99) and the kill -9 crash
## test on SQLite and PostgreSQL; writes benchmarks/results/feedback.json (BENCH_ARGS=--quick)
.PHONY: bench-feedback
bench-feedback: install
	command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -q wrk; }
	$(BIN)/python benchmarks/feedback/run.py $(BENCH_ARGS)

## bench-active-learning: strategies vs random sampling on AI4I with the tabular family; writes
## benchmarks/results/active_learning.json and .png (BENCH_ARGS=--quick)
.PHONY: bench-active-learning
bench-active-learning: install
	$(BIN)/python benchmarks/active_learning/run.py $(BENCH_ARGS)

## bench-drift: learnloop's drift report vs Evidently's DataDriftPreset on 100k and 1M rows x 20
## columns, with and without injected shifts; writes benchmarks/results/drift.json (BENCH_ARGS=--quick)
.PHONY: bench-drift
bench-drift: install
	PYTHON=$(PYTHON) benchmarks/drift/peers.sh
	$(BIN)/python benchmarks/drift/run.py $(BENCH_ARGS)

## bench-kt: learnloop's DKT, attentive model and BKT beside pyBKT on the knowledge-tracing splits
## (DKVMN, AKT 5 folds per attempt and row by row, Synthetic-5, simulator + oracle); writes benchmarks/results/kt.json
.PHONY: bench-kt
bench-kt: install
	PYTHON=$(PYTHON) benchmarks/kt/peers.sh
	$(BIN)/python benchmarks/kt/run.py $(BENCH_ARGS)

## bench-fuzz: schemathesis over the whole OpenAPI (every check) against a served demo home until
## 25,000 requests; writes benchmarks/results/fuzz.json (BENCH_ARGS=--quick; see benchmarks/fuzz/README.md)
.PHONY: bench-fuzz
bench-fuzz: install
	$(BIN)/python benchmarks/fuzz/run.py $(BENCH_ARGS)

## bench-pii: precision/recall of the PII detector on its labelled set; writes benchmarks/results/pii.json
.PHONY: bench-pii
bench-pii: install
	$(BIN)/python benchmarks/privacy/pii_eval.py

## proto: regenerate the committed gRPC modules in src/learnloop/grpc from proto/grpc_predict_v2.proto
# The descriptors go to a private pool: tritonclient registers the same `inference.*` names in
# protobuf's default pool, and both must load in one process.
GRPC_DIR := src/learnloop/grpc
.PHONY: proto
proto: install
	$(BIN)/python -m grpc_tools.protoc --proto_path=learnloop/grpc=$(GRPC_DIR)/proto \
		--python_out=src --pyi_out=src --grpc_python_out=src \
		$(GRPC_DIR)/proto/grpc_predict_v2.proto
	sed -i 's/^DESCRIPTOR = _descriptor_pool.Default()/DESCRIPTOR = _descriptor_pool.DescriptorPool()/' \
		$(GRPC_DIR)/grpc_predict_v2_pb2.py
	sed -i '1i # ruff: noqa' $(GRPC_DIR)/grpc_predict_v2_pb2.py $(GRPC_DIR)/grpc_predict_v2_pb2.pyi \
		$(GRPC_DIR)/grpc_predict_v2_pb2_grpc.py
	$(BIN)/ruff format --quiet $(GRPC_DIR)/grpc_predict_v2_pb2.py $(GRPC_DIR)/grpc_predict_v2_pb2.pyi \
		$(GRPC_DIR)/grpc_predict_v2_pb2_grpc.py
