# pullbridge: every install, check and test step, from a clean clone with no Docker.
#
#   make dev          serve the whole stack on http://127.0.0.1:${PORT:-3000}
#   make lint         ruff, ruff format, mypy, xenon (complexity), cfn-lint, sam validate --lint
#   make build        sam build (no container; needs python3.13, e.g. from pyenv)
#   make unit | integration | e2e
#   make test         lint + build + every test under coverage (a 60-second soak among them)
#   make soak         DURATION=600 SEED=1 FAULTS=dynamodb:0.1,provider:0.2: the fault-injection soak
#   make clean        remove build and test output (make distclean also removes the venvs)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.installed
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
SAM_CLI_VERSION ?= 1.170.0
DYNALITE := node_modules/.bin/dynalite
PYTEST_ARGS ?=
NPM ?= npm
# Every Python tree of the repository; a function above radon's rank C (cyclomatic complexity > 20) fails lint.
COMPLEXITY_PATHS := functions layers local clients bench tests

export SAM_CLI_TELEMETRY := 0
# sam validate wants a region and credentials even though it talks to no AWS service.
OFFLINE_AWS_ENV := AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
	AWS_SESSION_TOKEN=testing

.PHONY: help dev lint build unit integration e2e test bench soak clean distclean chromium

help:
	@sed -n '3,11s/^# \{0,1\}//p' $(firstword $(MAKEFILE_LIST))

# --- installs ----------------------------------------------------------------------------------

# The stamp makes the venv re-install whenever the declared dependencies change.
$(VENV_STAMP): pyproject.toml clients/python/pyproject.toml layers/shared/requirements.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]' -e './clients/python[cli,admin]' pytest-xdist
	touch $@

$(VENV): $(VENV_STAMP)

# SAM CLI pins conflict with moto, so it lives in its own venv, which git and ruff ignore.
$(SAM):
	$(PYTHON) -m venv $(SAM_VENV)
	echo '*' > $(SAM_VENV)/.gitignore
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet 'aws-sam-cli==$(SAM_CLI_VERSION)'
	touch $@

$(SAM_VENV): $(SAM)

# dynalite is a second DynamoDB engine for the tests; without npm those tests skip themselves.
$(DYNALITE):
	@if command -v $(NPM) >/dev/null 2>&1; then \
		$(NPM) install --prefix "$(CURDIR)" --no-save --no-audit --no-fund --loglevel=error dynalite@4; \
	else \
		echo "$(NPM) not found: dynalite is not installed; the tests that need it will be skipped."; \
	fi

# The console's browser tests drive Debian's Chromium through Playwright (Playwright's own browser
# download cannot work here). Installed with apt-get when missing and this runs as root; where it cannot
# be, the tests skip themselves and say why.
CHROMIUM := /usr/bin/chromium

chromium:
	@if [ -x $(CHROMIUM) ]; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the console's browser tests"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } \
			|| echo "chromium could not be installed: the console's browser tests will be skipped."; \
	else \
		echo "$(CHROMIUM) is missing and cannot be installed here (apt-get as root): the console's browser tests will be skipped."; \
	fi

# --- running -----------------------------------------------------------------------------------

dev: $(VENV_STAMP)
	PULLBRIDGE_ALLOW_PRIVATE_URLS=$${PULLBRIDGE_ALLOW_PRIVATE_URLS:-1} $(VENV)/bin/python -m pullbridge_local

# --- checks ------------------------------------------------------------------------------------

lint: $(VENV_STAMP) $(SAM)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/xenon --max-absolute C $(COMPLEXITY_PATHS)
	$(VENV)/bin/cfn-lint template.yaml
	$(OFFLINE_AWS_ENV) $(SAM) validate --lint --region us-east-1 --template-file template.yaml

# sam build finds the runtime's interpreter as `python3.13` on PATH. A pyenv shim for a version
# that is installed but not selected fails, so fall back to the installed pyenv version itself.
build: $(SAM)
	@py="$$(python3.13 -c 'import sys; print(sys.executable)' 2>/dev/null || true)"; \
	if [ -z "$$py" ] && command -v pyenv >/dev/null 2>&1; then \
		v="$$(pyenv versions --bare 2>/dev/null | grep -E '^3\.13(\.[0-9]+)?$$' | sort -V | tail -n1 || true)"; \
		if [ -n "$$v" ]; then py="$$(pyenv root)/versions/$$v/bin/python3.13"; fi; \
	fi; \
	if [ -z "$$py" ] || [ ! -x "$$py" ]; then \
		echo "make build: python3.13 is needed for the python3.13 runtime and was not found on PATH" >&2; \
		echo "            (install it, e.g. 'pyenv install 3.13', and put it on PATH)." >&2; \
		exit 1; \
	fi; \
	echo "sam build with $$py"; \
	PATH="$$(dirname "$$py"):$$PATH" $(SAM) build --template-file template.yaml --parallel --cached

# --- tests -------------------------------------------------------------------------------------

unit: $(VENV_STAMP)
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

integration: $(VENV_STAMP) $(DYNALITE)
	$(VENV)/bin/pytest tests/integration $(PYTEST_ARGS)

e2e: $(VENV_STAMP) $(DYNALITE) chromium
	$(VENV)/bin/pytest tests/e2e $(PYTEST_ARGS)

test: $(VENV_STAMP) lint build $(DYNALITE) chromium
	$(VENV)/bin/coverage erase
	$(VENV)/bin/coverage run -m pytest tests clients/python/tests $(PYTEST_ARGS)
	$(VENV)/bin/coverage report

# Not part of `make test`: the figures of docs/performance.md, one `name: value` line each on stdout.
bench: $(VENV_STAMP)
	@$(VENV)/bin/python -m bench

# Not part of `make test` (which runs a 60-second one): the fault-injection soak, its history checked at
# the end (docs/operations.md, "The soak"). The summary goes to stdout; the history, the fault log and the
# functions' output to $(SOAK_OUT). Exits 1 on any violation.
DURATION ?= 600
SEED ?= 1
FAULTS ?= dynamodb:0.1,provider:0.2
SOAK_OUT ?= .artifacts/soak
soak: $(VENV_STAMP)
	@$(VENV)/bin/python -m bench.soak --duration $(DURATION) --seed $(SEED) --faults '$(FAULTS)' --out $(SOAK_OUT)

clean:
	rm -rf .aws-sam htmlcov .coverage .coverage.* .pytest_cache .mypy_cache .ruff_cache .hypothesis .artifacts
	find . \( -path ./.git -o -path ./$(VENV) -o -path ./$(SAM_VENV) -o -path ./node_modules \) -prune \
		-o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(SAM_VENV) node_modules
