# The policy, its runner and every test. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

SOURCES := $(shell find src -name '*.rs') Cargo.toml Cargo.lock
RUNNER := target/release/policy-runner
RUNNER_SOURCES := $(shell find e2e-tests/runner/src -name '*.rs' 2>/dev/null) e2e-tests/runner/Cargo.toml
# The e2e suite runs with real kwctl too: make e2e-tests KWCTL=kwctl
KWCTL ?= $(CURDIR)/$(RUNNER)
# Where `make push` publishes, e.g. ghcr.io/acme/policies/iamra-sidecar-policy:v0.1.0
REGISTRY ?=
EXAMPLE_REQUEST ?= e2e-tests/fixtures/pod-plain.json
EXAMPLE_SETTINGS ?= e2e-tests/fixtures/settings.yaml

.PHONY: help
help: ## List the targets
	@grep -E '^[a-zA-Z_.-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

policy.wasm: $(SOURCES) scripts/build-wasm.sh ## Build the policy module (wasm32-wasip1, release)
	scripts/build-wasm.sh

annotated-policy.wasm: policy.wasm metadata.yml README.md ## Annotate the module with kwctl (needs kwctl)
	@command -v kwctl >/dev/null || { echo "kwctl is needed to annotate: https://github.com/kubewarden/kwctl/releases" >&2; exit 2; }
	kwctl annotate -m metadata.yml -u README.md -o $@ policy.wasm

.PHONY: push
push: annotated-policy.wasm ## Publish to an OCI registry: make push REGISTRY=ghcr.io/you/policies/iamra-sidecar-policy:v0.1.0
	@test -n "$(REGISTRY)" || { echo "set REGISTRY=<registry>/<repository>:<tag>" >&2; exit 2; }
	kwctl push annotated-policy.wasm registry://$(REGISTRY)

$(RUNNER): $(RUNNER_SOURCES) $(SOURCES)
	cargo build --locked --release -p policy-runner

.PHONY: runner
runner: $(RUNNER) ## Build the kwctl-compatible runner

.PHONY: test-deps
test-deps: ## Install what the tests need (bats, jq, Python packages)
	scripts/install-test-deps.sh

.PHONY: demo
demo: policy.wasm $(RUNNER) test-deps ## Show what the policy does to the bundled example pod
	scripts/demo.sh "$(KWCTL)" $(EXAMPLE_REQUEST) $(EXAMPLE_SETTINGS)

.PHONY: unit-tests
unit-tests: ## The policy's Rust unit tests (without building wasmtime)
	cargo test --locked -p iamra-sidecar-policy

.PHONY: runner-tests
runner-tests: ## The runner's own tests (builds wasmtime)
	cargo test --locked -p policy-runner

.PHONY: e2e-tests
e2e-tests: policy.wasm $(RUNNER) test-deps ## The bats suite, through the runner or KWCTL=kwctl
	KWCTL="$(KWCTL)" POLICY="$(CURDIR)/policy.wasm" bats e2e-tests

.PHONY: golden
golden: policy.wasm $(RUNNER) test-deps ## Rewrite e2e-tests/fixtures/golden/ from the policy's output (review the diff)
	GOLDEN_UPDATE=1 KWCTL="$(KWCTL)" POLICY="$(CURDIR)/policy.wasm" bats e2e-tests/golden.bats
	@git status --short -- e2e-tests/fixtures/golden | grep . || echo "golden files unchanged"

.PHONY: chart-test
chart-test: policy.wasm $(RUNNER) test-deps ## Chart tests with Helm's engine (helm-python-sdk)
	KWCTL="$(KWCTL)" POLICY="$(CURDIR)/policy.wasm" python3 -m pytest charts/tests -q

.PHONY: test
test: lint unit-tests runner-tests e2e-tests chart-test ## Every test: lint, unit, runner, e2e and charts

.PHONY: lint
lint: ## rustfmt and clippy, warnings denied (adds them when missing)
	scripts/lint-tools.sh
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

# make bench's floor: the least a mutating policy does, with the same SDK and profile.
FLOOR := target/bench-floor.wasm

$(FLOOR): $(shell find bench/floor -name '*.rs') bench/floor/Cargo.toml Cargo.lock scripts/build-wasm.sh
	scripts/build-wasm.sh bench-floor $@

.PHONY: bench
bench: policy.wasm $(FLOOR) ## Print validate timings: wasm vs native and ours vs the floor, 1/10/100 containers
	e2e-tests/runner/bench.sh $(CURDIR)/policy.wasm $(CURDIR)/$(FLOOR)

.PHONY: clean
clean:
	cargo clean
	rm -f policy.wasm annotated-policy.wasm
