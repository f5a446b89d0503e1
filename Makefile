# berth — build, test and benchmark the stages, and walk through the pipeline.
# Every target can be run on a fresh Debian machine with Node >= 20.19:
# `make deps` installs the Debian packages and node modules it needs.

SHELL := /bin/bash
export NX_DAEMON := false
export NX_NO_CLOUD := true
export NX_TUI := false

DEBIAN_PACKAGES := docker-registry busybox-static runc crun skopeo umoci \
	containernetworking-plugins iptables iproute2 auditd uidmap util-linux \
	apache2-utils zstd hyperfine catatonit podman conmon containerd curl acl slirp4netns openssl

.PHONY: help deps build typecheck test root-test bench install demo clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

deps: ## Install the Debian packages and node modules berth needs
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@[ -d node_modules/.bin ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund

build: ## Bundle every binary (tools/*/dist) and type-check the monorepo
	npx nx run-many -t build --outputStyle=static
	npx tsc -p tsconfig.json --noEmit

typecheck: ## Type-check only
	npx tsc -p tsconfig.json --noEmit

test: deps build ## Run every test (root tests need root: CI runs as root)
	npx vitest run

root-test: test ## Alias: the suite runs its root tests when run as root

bench: deps build ## Benchmarks against the peer tools (bench/README.md)
	bash bench/run.sh

install: build ## Put the berth binaries on PATH (/usr/local/bin, or PREFIX)
	@prefix=$${PREFIX:-/usr/local}; for b in tools/*/bin/*.js; do \
		name=$$(basename $$b .js); ln -sf "$(CURDIR)/$$b" "$$prefix/bin/$$name"; echo "$$prefix/bin/$$name"; done

demo: deps build ## The main job end to end: a loopback registry with a locally built image, pulled by berth
	bash test/demo.sh

clean: ## Remove build outputs
	rm -rf tools/*/dist .nx
