# portside: `make demo` and `make test` each set everything up first, so on a fresh
# Debian machine each is one command.

VENV   := .venv
PY     := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest

# System components portside drives (DESIGN.md), and the reference tools of the interop tests.
DEBS := crun runc conmon tini catatonit busybox-static debootstrap \
        nftables iproute2 containernetworking-plugins zstd netavark dnsmasq-base \
        skopeo podman docker-registry

.PHONY: setup debs venv demo test lint bench clean

setup: debs venv

debs:
	@missing=""; for p in $(DEBS); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	sh scripts/install-launcher.sh $(VENV) src
	touch $@

# The image store tour, then the journey (build, push, pull, run, answer a request), then
# a multi-container application with compose.
demo: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/demo.sh
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/demo-journey.sh
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/demo-compose.sh
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/demo-services.sh

test: setup
	$(PYTEST) -q

# lint-imports checks the import layering of DESIGN.md ([tool.importlinter] in pyproject.toml).
lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-logo

bench: setup
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
