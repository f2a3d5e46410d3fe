# mcp-runtime: `make run` starts the host with embedded defaults; `make test` runs the whole suite.

GUESTS    := docker-backend code-engine-backend wasm-backend default-guardrails pinned-images approval-default approval-large-cpu \
             no-critical-vulns \
             fault-policy fault-approval http-probe compat-policy stub-backend tool-component http-component text-tools
GUEST_DIR := target/wasm32-wasip2/guest
FIXTURE   := target/x86_64-unknown-linux-gnu/release/mcp-fixture
BRIDGE    := target/x86_64-unknown-linux-gnu/release/mcp-stdio-bridge

.PHONY: run check-registries engine base-images test test-suite test-fast verify verify-suite verify-tools coverage deny openapi schemathesis mcp-sdk fixture-image guests rules fixture bridge contextforge catalog-fixtures host lint bench soak clean-test-objects

# Each of `run` and `test` does its own set-up first (scripts/setup.sh: only
# what is missing is installed), so either works on a fresh machine by itself.
run:
	scripts/setup.sh run
	$(MAKE) guests host bridge
	eval "$$(scripts/site-indexes.sh)" && RUNTIME_BUILDERS_STDIO_BRIDGE=$(BRIDGE) ./target/debug/mcp-runtime

# The package test against the public npm registry and PyPI instead of the
# suite's loopback mirrors (`make test` reaches no public address); the site's
# CA bundle and index addresses as `make run` finds them.
check-registries:
	scripts/setup.sh test
	$(MAKE) guests fixture-image mcp-sdk
	eval "$$(scripts/site-indexes.sh)" && \
	  cargo test -p mcp-runtime --test e2e packages::public_indexes_serve_the_registrys_packages -- --ignored

# Start a Docker engine when none answers (installing it if needed).
engine:
	scripts/setup.sh engine

# The base images npm and PyPI servers build on, from Debian packages (no
# Docker Hub): mcp-runtime/node and mcp-runtime/python. Kept when present.
base-images:
	scripts/setup.sh base-images

host:
	cargo build -p mcp-runtime

# The API's OpenAPI document, kept in docs/ (a test fails when it differs from the code's).
openapi: host
	./target/debug/mcp-runtime openapi > docs/openapi.json

# WebAssembly components (backend plugins, policies, test policies).
guests:
	cargo build --target wasm32-wasip2 --profile guest $(addprefix -p ,$(GUESTS))

# The pinned-images rule again, in Python and JavaScript, built with the tools
# their authors use (pinned; installed once under .venv/).
COMPONENTIZE_PY := .venv/authoring/bin/componentize-py
COMPONENTIZE_JS := .venv/node/node_modules/.bin/componentize-js
rules: $(GUEST_DIR)/pinned_images_py.wasm $(GUEST_DIR)/pinned_images_js.wasm
$(COMPONENTIZE_PY):
	python3 -m venv .venv/authoring
	.venv/authoring/bin/pip install -q componentize-py==0.25.1
$(COMPONENTIZE_JS):
	npm install --silent --no-fund --prefix .venv/node @bytecodealliance/componentize-js@0.23.0
$(GUEST_DIR)/pinned_images_py.wasm: policies/pinned-images-py/pinned_images.py wit/*.wit | $(COMPONENTIZE_PY)
	@mkdir -p $(GUEST_DIR)
	$(COMPONENTIZE_PY) -d wit -w guardrail-policy componentize -p policies/pinned-images-py pinned_images -o $@
$(GUEST_DIR)/pinned_images_js.wasm: policies/pinned-images-js/pinned-images.js wit/*.wit | $(COMPONENTIZE_JS)
	@mkdir -p $(GUEST_DIR)
	$(COMPONENTIZE_JS) $< --wit wit -n guardrail-policy -d http fetch-event -o $@

# ContextForge's published catalog (135 servers), from its sdist: a real
# document for the catalog import tests (1.1.0 ships no sdist; 1.0.7's has it).
CF_CATALOG := .venv/fixtures/mcp-catalog.yml
catalog-fixtures: $(CF_CATALOG)
$(CF_CATALOG):
	mkdir -p .venv/fixtures
	python3 -m pip download -q --no-deps --no-binary :all: mcp-contextforge-gateway==1.0.7 -d .venv/fixtures
	tar xzf .venv/fixtures/mcp_contextforge_gateway-1.0.7.tar.gz -C .venv/fixtures --strip-components=1 \
		mcp_contextforge_gateway-1.0.7/mcp-catalog.yml

# The MCP test server, linked statically so it runs in a FROM scratch image.
fixture:
	RUSTFLAGS='-C target-feature=+crt-static' cargo build -p mcp-fixture --release --target x86_64-unknown-linux-gnu

# The static stdio bridge (bridge/) the host places in a stdio server's image
# for backends that run only HTTP servers (Code Engine); static like the fixture.
bridge:
	RUSTFLAGS='-C target-feature=+crt-static' cargo build -p mcp-bridge --release --target x86_64-unknown-linux-gnu --bin mcp-stdio-bridge

# The fixture as an image (FROM scratch around the static binary): the example
# server the guides deploy (docs/guides/), tagged mcp-fixture:latest.
fixture-image: fixture
	docker build -q -t mcp-fixture:latest -f tests/fixture/Dockerfile $(dir $(FIXTURE))

# The official MCP Python SDK, which the API guide connects with.
MCP_SDK := .venv/mcp-sdk/bin/python3
mcp-sdk: $(MCP_SDK)
$(MCP_SDK):
	python3 -m venv .venv/mcp-sdk
	.venv/mcp-sdk/bin/pip install -q mcp==2.3.0

# The real ContextForge gateway the gateway tests register with, in a venv of
# its own (Python 3.12 from pyenv; 1.1.0 needs >=3.12). Installed once.
CONTEXTFORGE := .venv/contextforge/bin/mcpgateway
PYTHON312 ?= $(shell ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12.*/bin/python3 2>/dev/null | tail -n1)
contextforge: $(CONTEXTFORGE)
$(CONTEXTFORGE):
	@test -n "$(PYTHON312)" || { echo "Python 3.12 is needed for ContextForge 1.1.0 (pyenv install 3.12)"; exit 1; }
	$(PYTHON312) -m venv .venv/contextforge
	.venv/contextforge/bin/pip install -q mcp-contextforge-gateway==1.1.0

# schemathesis, which checks the running host against its OpenAPI document (tests/e2e/api_fuzz.rs).
SCHEMATHESIS := .venv/schemathesis/bin/schemathesis
schemathesis: $(SCHEMATHESIS)
$(SCHEMATHESIS):
	python3 -m venv .venv/schemathesis
	.venv/schemathesis/bin/pip install -q schemathesis==4.32.5

test:
	scripts/setup.sh test
	$(MAKE) test-suite

test-suite: guests rules fixture bridge fixture-image contextforge catalog-fixtures schemathesis mcp-sdk lint
	cargo test -p mcp-runtime -p mcp-bridge -p ce-fake -- --test-threads=2
	cargo test -p image-ref -p guest-kit -p code-engine-backend -p docker-backend --lib
	$(MAKE) clean-test-objects

# The developers' tier: the host's unit tests, the architecture test and the
# in-process router tests (no engine, no network), in a few minutes.
test-fast: guests
	cargo test -p mcp-runtime --lib --test architecture --test router -- --test-threads=2
	cargo test -p mcp-bridge --lib

# What the Definition of Done asks, in one command: format and clippy (host,
# tests, guests), the whole suite (schemathesis against the live host among it)
# run instrumented, with line coverage printed and held at 80% or more, and
# cargo deny for licenses and duplicate versions.
verify:
	scripts/setup.sh test
	$(MAKE) verify-suite

verify-suite: guests rules fixture bridge fixture-image contextforge catalog-fixtures schemathesis mcp-sdk lint coverage deny

# What coverage and deny run with, installed once (pinned).
verify-tools:
	rustup component list --installed | grep -q '^llvm-tools' || rustup component add llvm-tools
	command -v cargo-llvm-cov >/dev/null || cargo install --locked cargo-llvm-cov@0.9.1
	command -v cargo-deny >/dev/null || cargo install --locked cargo-deny@0.20.2

# Line coverage of the host and of the plugins' native unit tests (code that
# runs inside wasmtime as a component is not instrumented).
COVERAGE_MIN := 80
coverage: verify-tools
	cargo llvm-cov clean --workspace
	cargo llvm-cov --no-report -p mcp-runtime -p mcp-bridge -p ce-fake -- --test-threads=2
	cargo llvm-cov --no-report -p image-ref -p guest-kit -p code-engine-backend --lib
	$(MAKE) clean-test-objects
	cargo llvm-cov report --summary-only --ignore-filename-regex '(tests/|benches/)' --fail-under-lines $(COVERAGE_MIN)

deny: verify-tools
	cargo deny check licenses bans

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --target wasm32-wasip2 $(addprefix -p ,$(GUESTS)) -p guest-kit -p image-ref -- -D warnings

bench: guests rules fixture bridge
	cargo build --release -p mcp-runtime
	cargo bench -p mcp-runtime --bench runtime

# The host under mixed load for SOAK_MINUTES (20): RSS, descriptors, tasks,
# store size, errors and p99 every minute; fails on unprovoked errors or growth.
soak: guests rules fixture bridge
	cargo build --release -p mcp-runtime
	cargo bench -p mcp-runtime --bench soak

# Leftovers of interrupted test runs (tests clean up after themselves).
clean-test-objects:
	-@docker ps -aq --filter label=mcp-runtime.test | xargs -r docker rm -f -v >/dev/null
	-@docker network ls -q --filter label=mcp-runtime.test | xargs -r docker network rm >/dev/null
	-@docker volume ls -q --filter label=mcp-runtime.test | xargs -r docker volume rm -f >/dev/null
