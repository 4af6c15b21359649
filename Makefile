# Thin targets; each creates or refreshes the local virtualenv first, so a newcomer needs
# nothing but python3 (>= 3.11) and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed
PROTO_FILES := $(wildcard protos/vigil/*/v1/*.proto)
PYTEST_ARGS ?=

.PHONY: venv run test test-fast protos protos-check lint typecheck bench chaos soak clean

# The venv is rebuilt when pyproject.toml changes (the stamp is older than it).
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

# healthd (supervisor mode) starts both services (2 replicas each) as children, restarts them
# when they fail and stops them first on Ctrl-C. `healthd keep` restarts healthd itself when it
# dies; the services outlive it and the new healthd adopts them. The security service creates .vigil/dev-token (an ADMIN
# key, 0600, git-ignored) on its first start and logs where it is.
run: $(STAMP)
	@echo "Vigil local stack (Ctrl-C stops everything):"
	@echo "  healthd   grpc 127.0.0.1:$${VIGIL_HEALTHD_SERVER__PORT:-50050}   dashboard http://127.0.0.1:$${VIGIL_HEALTHD_HTTP__PORT:-8050}/"
	@echo "  workflow  grpc 127.0.0.1:$${VIGIL_WORKFLOW_SERVER__PORT:-50051}   2 replicas, health 127.0.0.1:$${VIGIL_LOCAL_WORKFLOW_HEALTH_PORT:-50061}+"
	@echo "  security  grpc 127.0.0.1:$${VIGIL_SECURITY_SERVER__PORT:-50052}   2 replicas, health 127.0.0.1:$${VIGIL_LOCAL_SECURITY_HEALTH_PORT:-50071}+"
	@echo "  logs      .vigil/logs/<service>-<replica>.log   (healthd status shows a failing one's last lines)"
	@echo "  ADMIN dev token: .vigil/dev-token (created on first start; Bearer token for calls)"
	$(PY) -m healthd keep --config deploy/local/healthd.yaml

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -m "not e2e and not chaos" $(PYTEST_ARGS)

# Regenerate Python (+ .pyi stubs) from the .proto files, the single source of the contracts.
protos: $(STAMP)
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=protos --pyi_out=protos \
		--grpc_python_out=protos $(PROTO_FILES)

# Fails when the committed generated code differs from what `make protos` would produce.
protos-check: $(STAMP)
	@tmp=$$(mktemp -d) && \
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=$$tmp --pyi_out=$$tmp \
		--grpc_python_out=$$tmp $(PROTO_FILES) && \
	for f in $$(cd $$tmp && find . -name '*_pb2*.py*'); do \
		cmp -s $$tmp/$$f protos/$$f || { echo "protos-check: protos/$$f is stale; run 'make protos'"; rm -rf $$tmp; exit 1; }; \
	done; rm -rf $$tmp; echo "protos-check: generated code is up to date"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	cd protos && ../$(BIN)/buf lint
	@# Breaking-change check against main (skipped only where main has no protos yet).
	@if git rev-parse -q --verify main >/dev/null && git cat-file -e main:protos/buf.yaml 2>/dev/null; then \
		cd protos && ../$(BIN)/buf breaking --against '../.git#branch=main,subdir=protos'; \
	else echo "buf breaking: no protos on main to compare with"; fi

typecheck: $(STAMP)
	$(BIN)/mypy services healthd

bench: $(STAMP)
	$(PY) -m bench

# Every drill (make test runs only the bounded subset: drills marked `full` skip there).
chaos: $(STAMP)
	VIGIL_CHAOS=full $(PY) -m pytest -m chaos tests/chaos -rA $(PYTEST_ARGS)

# Mixed load with periodic faults for DURATION seconds; RSS of each process after warm-up.
DURATION ?= 300
soak: $(STAMP)
	$(PY) -m tests.chaos.soak --duration $(DURATION)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
