# The policy, its runner and every test. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Kubewarden's own kwctl and policy-server, when this checkout sits beside shared/ (CI, developers)
SHARED_BIN ?= $(abspath $(CURDIR)/../shared/bin)
export PATH := $(if $(wildcard $(SHARED_BIN)/kwctl),$(SHARED_BIN):)$(PATH)

SOURCES := $(shell find src -name '*.rs') build.rs Cargo.toml Cargo.lock
# The runner and its tests share the `runner` profile (Cargo.toml): wasmtime compiles once.
RUNNER := target/runner/policy-runner
RUNNER_SOURCES := $(shell find e2e-tests/runner/src -name '*.rs' 2>/dev/null) e2e-tests/runner/Cargo.toml
# The e2e suite runs with real kwctl too: make e2e-tests KWCTL=kwctl
KWCTL ?= $(CURDIR)/$(RUNNER)
# make demo runs Kubewarden's kwctl when found (PATH, which includes SHARED_BIN) and builds the
# runner, and with it wasmtime, only when not. Searched here: make 4.3's $(shell) does not see
# the exported PATH above.
DEMO_KWCTL := $(firstword $(wildcard $(addsuffix /kwctl,$(subst :, ,$(PATH)))))
# The runner, as a prerequisite only where KWCTL is the runner (KWCTL=kwctl builds no wasmtime)
KWCTL_RUNNER := $(if $(filter $(CURDIR)/$(RUNNER),$(KWCTL)),$(RUNNER))
# Where `make publish` publishes (host[:port]/path), e.g. ghcr.io/iamra-sidecar; PLAIN_HTTP=1
# for a registry on loopback without TLS
REGISTRY ?=
PLAIN_HTTP ?=
# `make release VERSION=x.y.z`; without it, the version already in Cargo.toml
VERSION ?=
# make publish COSIGN_KEY=cosign.key signs the module with that cosign key pair (password in
# $COSIGN_PASSWORD) and attaches the SBOM as a signed attestation, offline (no Rekor upload)
COSIGN_KEY ?=
# make dist/publish SIGN_KEY=<PGP key name> signs the charts (Helm provenance) with that key
# from KEYRING, a secret keyring (gpg --export-secret-keys >secring.gpg)
SIGN_KEY ?=
KEYRING ?= $(HOME)/.gnupg/secring.gpg
EXAMPLE_REQUEST ?= e2e-tests/fixtures/pod-plain.json
EXAMPLE_SETTINGS ?= e2e-tests/fixtures/settings.yaml

.PHONY: help
help: ## List the targets
	@grep -E '^[a-zA-Z_.-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

policy.wasm: $(SOURCES) scripts/build-wasm.sh ## Build the policy module (wasm32-wasip1, release)
	scripts/build-wasm.sh

annotated-policy.wasm: policy.wasm metadata.yml README.md ## Annotate the module (kwctl, else e2e-tests/tools/annotate.py)
	scripts/annotate.sh policy.wasm $@

.PHONY: release
release: ## Set the version everywhere: make release VERSION=x.y.z (moves CHANGELOG's Unreleased)
	scripts/release.py bump $(VERSION)

.PHONY: dist
dist: policy.wasm test-deps ## dist/: annotated module, both charts (.tgz), CycloneDX SBOM, SHA256SUMS
	SIGN_KEY="$(SIGN_KEY)" KEYRING="$(KEYRING)" scripts/dist.sh

.PHONY: publish
publish: registry-set dist ## Push dist/ to an OCI registry: make publish REGISTRY=ghcr.io/you [PLAIN_HTTP=1] [COSIGN_KEY=cosign.key] [SIGN_KEY=...]
	scripts/publish.py $(REGISTRY) $(if $(PLAIN_HTTP),--plain-http) $(if $(COSIGN_KEY),--cosign-key $(COSIGN_KEY))

.PHONY: registry-set
registry-set:
	@test -n "$(REGISTRY)" || { echo "set REGISTRY=<host>/<path>, e.g. REGISTRY=ghcr.io/you" >&2; exit 2; }

$(RUNNER): $(RUNNER_SOURCES) $(SOURCES)
	cargo build --locked --profile runner -p policy-runner

.PHONY: runner
runner: $(RUNNER) ## Build the kwctl-compatible runner

.PHONY: test-deps
test-deps: ## Install what the tests need (bats, jq, Python packages, the JavaScript SDK of the SDK suite)
	scripts/install-test-deps.sh

.PHONY: demo
demo: policy.wasm $(if $(DEMO_KWCTL),,$(RUNNER)) test-deps ## Show what the policy does to the bundled example pod (kwctl if found, else the runner)
	RUST_BACKTRACE=0 scripts/demo.sh "$(or $(DEMO_KWCTL),$(CURDIR)/$(RUNNER))" $(EXAMPLE_REQUEST) $(EXAMPLE_SETTINGS)

.PHONY: unit-tests
unit-tests: ## The policy's Rust unit tests (without building wasmtime)
	cargo test --locked -p iamra-sidecar-policy

.PHONY: miri
miri: ## The arena's tests under miri with strict provenance (needs nightly with miri, else says so and skips)
	scripts/miri.sh

# The one-instance test's module poisons each finished call's memory, so that anything
# kept from one call into the next (a lazy global) traps instead of passing unseen.
POISONED := target/policy-arena-poison.wasm

$(POISONED): $(SOURCES) scripts/build-wasm.sh
	WASM_FEATURES=arena-poison scripts/build-wasm.sh iamra-sidecar-policy $@

# The fresh-instance budget test counts instructions with valgrind: installed here when
# missing; where that fails, the test is skipped and this says so.
.PHONY: runner-tests
runner-tests: $(POISONED) policy.wasm ## The runner's own tests (builds wasmtime), the module (arena-poison) serving many requests in one instance, and the fresh-instance instruction budget (valgrind)
	@command -v valgrind >/dev/null || scripts/debian-install.sh valgrind || true
	@command -v valgrind >/dev/null || echo "SKIPPED: the fresh-instance instruction budget (bench/fresh-instance-budget.txt): valgrind is not installed and could not be installed"
	POLICY="$(CURDIR)/$(POISONED)" RELEASE_POLICY="$(CURDIR)/policy.wasm" \
	  cargo test --locked --profile runner -p policy-runner -- --include-ignored

.PHONY: e2e-tests
e2e-tests: policy.wasm $(KWCTL_RUNNER) test-deps ## The bats suite, through the runner or KWCTL=kwctl
	KWCTL="$(KWCTL)" POLICY="$(CURDIR)/policy.wasm" bats e2e-tests

.PHONY: e2e-tests-kwctl
e2e-tests-kwctl: policy.wasm test-deps ## The bats suite through the real kwctl, when it is on PATH (else skipped, saying so)
	@if command -v kwctl >/dev/null; then \
	  echo "e2e suite under $$(command -v kwctl)"; \
	  RUST_BACKTRACE=0 KWCTL=kwctl POLICY="$(CURDIR)/policy.wasm" bats e2e-tests; \
	elif [ -n "$(REQUIRE_KWCTL)" ]; then \
	  echo "FAILED: REQUIRE_KWCTL is set but kwctl is not on PATH, nor in $(SHARED_BIN)" >&2; exit 1; \
	else \
	  echo "SKIPPED: the e2e suite under the real kwctl (kwctl not on PATH, nor in $(SHARED_BIN))"; \
	fi

.PHONY: golden
golden: policy.wasm $(KWCTL_RUNNER) test-deps ## Rewrite e2e-tests/fixtures/golden/ from the policy's output (review the diff)
	GOLDEN_UPDATE=1 KWCTL="$(KWCTL)" POLICY="$(CURDIR)/policy.wasm" bats e2e-tests/golden.bats
	@git status --short -- e2e-tests/fixtures/golden | grep . || echo "golden files unchanged"

.PHONY: chart-test
chart-test: policy.wasm $(KWCTL_RUNNER) test-deps ## Chart tests: the helm CLI renders and lints, kubeconform validates (Go module proxy)
	KWCTL="$(KWCTL)" POLICY="$(CURDIR)/policy.wasm" python3 -m pytest charts/tests -q

.PHONY: release-test
release-test: policy.wasm test-deps ## One version, ArtifactHub metadata, make dist, registry round trip
	python3 -m pytest tests -q

.PHONY: cluster-up
cluster-up: policy.wasm test-deps ## Start a real control plane on loopback, install the chart, wait for active; prints export KUBECONFIG=...
	@scripts/cluster.sh up

.PHONY: cluster-down
cluster-down: ## Stop what cluster-up started and remove its state
	scripts/cluster.sh down

.PHONY: cluster-test
cluster-test: policy.wasm test-deps ## cluster-up, the tests through kube-apiserver, cluster-down (skipped, saying why, without Go or ../shared/bin)
	scripts/cluster.sh test

.PHONY: test
test: lint unit-tests miri runner-tests e2e-tests e2e-tests-kwctl chart-test release-test cluster-test ## Every test: lint, unit, miri (arena), runner, e2e (runner and real kwctl), charts, release and the cluster

.PHONY: lint
lint: ## rustfmt and clippy, warnings denied (adds them when missing)
	scripts/lint-tools.sh
	cargo fmt --all -- --check
	rustfmt --edition 2024 --check fuzz/build.rs fuzz/src/lib.rs fuzz/fuzz_targets/*.rs
	cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

# make bench's floor: the least a mutating policy does, with the same SDK and profile.
FLOOR := target/bench-floor.wasm

$(FLOOR): $(shell find bench/floor -name '*.rs') bench/floor/Cargo.toml Cargo.lock scripts/build-wasm.sh
	scripts/build-wasm.sh bench-floor $@

.PHONY: bench
bench: policy.wasm $(FLOOR) ## Print validate timings, fresh instance per request (as policy-server) and warm: ours, the floor, a constant-answer guest, native; 1/10/100 containers; native scaling series
	e2e-tests/runner/bench.sh $(CURDIR)/policy.wasm $(CURDIR)/$(FLOOR)

.PHONY: bench-count
bench-count: policy.wasm $(FLOOR) ## Instructions per request through wasmtime (valgrind), fresh instance and warm: ours, the floor, a constant-answer guest; steady under load
	e2e-tests/runner/bench-count.sh $(CURDIR)/policy.wasm $(CURDIR)/$(FLOOR)

.PHONY: bench-phases
bench-phases: policy.wasm ## Where a fresh-instance request's instructions go (valgrind): instantiation, wapc_init, settings, memory growth, the injection
	e2e-tests/runner/bench-phases.sh $(CURDIR)/policy.wasm

# make bench-profile PROFILE_ARGS="--containers 100": policy-perf count's options
PROFILE_ARGS ?=

.PHONY: bench-profile
bench-profile: ## Where a fresh-instance request's instructions go, by function of the module (valgrind; a build that keeps the names)
	e2e-tests/runner/bench-profile.sh $(PROFILE_ARGS)

# make fuzz FUZZ_SECONDS=600: seconds per fuzz target; make fuzz-long FUZZ_LONG_SECONDS=7200
# FUZZ_JOBS=2: seconds per target and libFuzzer fork workers (docs/dev/fuzzing.md)
FUZZ_SECONDS ?= 120
FUZZ_LONG_SECONDS ?= 3600
FUZZ_JOBS ?= 2

.PHONY: fuzz
fuzz: ## Fuzz validate (raw, structure-aware) and validate_settings, FUZZ_SECONDS each: reproducers first, fixed seed; needs nightly + cargo-fuzz, else says so and skips
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

.PHONY: fuzz-long
fuzz-long: ## Hours of fuzzing: each target FUZZ_LONG_SECONDS (3600) on FUZZ_JOBS (2) workers, kept corpus; totals appended to fuzz/long-runs.txt
	FUZZ_LONG_SECONDS=$(FUZZ_LONG_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) scripts/fuzz.sh --long

.PHONY: load
load: policy.wasm $(FLOOR) test-deps ## Bounded load (3 rounds of 8 x 5 s, 127.0.0.1) through the real policy-server: inject and guard, ours beside the SDK floor and a constant-answer guest
	scripts/load.sh $(CURDIR)/policy.wasm $(CURDIR)/$(FLOOR)

.PHONY: clean
clean:
	cargo clean
	rm -rf policy.wasm annotated-policy.wasm dist
