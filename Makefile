# otp-bot developer commands. `make test` works on a fresh Debian/Ubuntu machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: help venv lock dovecot courier tools test check lint types imports format demo soak bench docs clean

help:
	@echo "make demo    run the whole loop locally (simulator + Dovecot + daemon)"
	@echo "make test    install what is missing and run the test suite"
	@echo "make check   lint (ruff), types (mypy --strict), import layers and the tests"
	@echo "make soak    the long fault-injection soak (about 10 minutes)"
	@echo "make bench   the benchmark scripts"
	@echo "make docs    build the documentation site into site/"

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "otp-bot needs Python >= 3.11 ($(PYTHON) is older)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || \
		{ echo "cannot create a virtualenv: install python3-venv"; exit 1; }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

venv: $(VENV)/.installed

# The runtime dependencies pinned with hashes (the Dockerfile installs from it).
# Run after changing [project] dependencies in pyproject.toml.
lock: venv
	$(PY) -m pip install --quiet pip-tools
	$(VENV)/bin/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links --output-file deploy/requirements.lock pyproject.toml

dovecot:
	@bash .ci/install-dovecot.sh

courier:
	@bash .ci/install-courier.sh

# Outside tools the tests use beside Dovecot (kubectl for the Kubernetes tree,
# promtool for the alert rules).
tools:
	@bash .ci/install-kubectl.sh
	@bash .ci/install-promtool.sh

test: venv dovecot courier tools
	$(PY) -m pytest $(PYTEST_ARGS)

demo: venv dovecot
	$(PY) deploy/demo/demo.py

soak: venv dovecot
	$(PY) bench/soak.py --drafts 200 --accounts 2

lint: venv
	$(VENV)/bin/ruff check otp_bot tests bench
	$(VENV)/bin/ruff format --check otp_bot tests bench

types: venv
	$(VENV)/bin/mypy

imports: venv
	$(VENV)/bin/lint-imports

format: venv
	$(VENV)/bin/ruff format otp_bot tests bench
	$(VENV)/bin/ruff check --fix otp_bot tests bench

check: lint types imports test

docs: venv
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache site dist
