# Hearth — every target sets up what it needs; run as root on Debian 12.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
HOST_PYTHON ?= $(shell for v in 3.11 3.12 3.13; do \
	p=$$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/$$v.*/bin/python$$v 2>/dev/null | sort -V | tail -1); \
	if [ -n "$$p" ] && [ -x "$$p" ]; then echo $$p; exit 0; fi; \
	p=$$(command -v python$$v 2>/dev/null) && $$p -c 'import sys' 2>/dev/null && { echo $$p; exit 0; }; \
	done; echo python3)
# autoconf, automake, libtool, cmake, g++: building Node's aws-lambda-ric (its native part) in its
# test; python3-pip: building awslambdaric for the host python3 the sandbox sees, in its test
DEB_PACKAGES := e2fsprogs iproute2 libseccomp2 iptables wrk bubblewrap autoconf automake libtool cmake g++ make python3-pip
STAMP := $(VENV)/.installed

.PHONY: install serve test check bench clean deb

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory deb
	test -x $(PY) || $(HOST_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

deb:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

serve: install
	$(VENV)/bin/hearth server --data-dir ./.hearth

test: install
	$(PY) -m pytest -q

check: install
	$(VENV)/bin/ruff format --check hearth tests benchmarks
	$(VENV)/bin/ruff check hearth tests benchmarks
	$(VENV)/bin/mypy hearth

bench: install
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .hearth
