# mcp-runtime: `make run` starts the host with embedded defaults; `make test` runs the whole suite.

GUESTS    := docker-backend code-engine-backend default-guardrails pinned-images approval-default approval-large-cpu \
             fault-policy fault-approval http-probe
GUEST_DIR := target/wasm32-wasip2/guest
FIXTURE   := target/x86_64-unknown-linux-gnu/release/mcp-fixture

.PHONY: run test guests fixture host lint bench clean-test-objects

run: guests host
	./target/debug/mcp-runtime

host:
	cargo build -p mcp-runtime

# WebAssembly components (backend plugins, policies, test policies).
guests:
	cargo build --target wasm32-wasip2 --profile guest $(addprefix -p ,$(GUESTS))

# The MCP test server, linked statically so it runs in a FROM scratch image.
fixture:
	RUSTFLAGS='-C target-feature=+crt-static' cargo build -p mcp-fixture --release --target x86_64-unknown-linux-gnu

test: guests fixture lint
	cargo test -p mcp-runtime -p ce-fake -- --test-threads=2
	cargo test -p image-ref -p guest-kit -p code-engine-backend --lib
	$(MAKE) clean-test-objects

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --target wasm32-wasip2 $(addprefix -p ,$(GUESTS)) -p guest-kit -p image-ref -- -D warnings

bench: guests fixture
	cargo build --release -p mcp-runtime
	cargo bench -p mcp-runtime --bench runtime

# Leftovers of interrupted test runs (tests clean up after themselves).
clean-test-objects:
	-@docker ps -aq --filter label=mcp-runtime.test | xargs -r docker rm -f -v >/dev/null
	-@docker network ls -q --filter label=mcp-runtime.test | xargs -r docker network rm >/dev/null
	-@docker volume ls -q --filter label=mcp-runtime.test | xargs -r docker volume rm -f >/dev/null
