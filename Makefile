# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install chromium lint check lock clean-var

# The locked versions (requirements.lock) constrain the install, so what runs is what `make check` audited.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Start PostgreSQL and Redis under var/ (unless DATABASE_URL/REDIS_URL are set),
## migrate, seed the demo once, and serve web + worker + clock on 127.0.0.1:$${PORT:-5000}.
run: $(STAMP)
	$(BIN)/python -m saas.devserver

## Run the whole suite against its own throwaway PostgreSQL and Redis.
test: $(STAMP) chromium check
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Security checks (also part of `make test`): bandit fails on any high-severity finding in our code;
## pip-audit fails on any known vulnerability in the locked dependencies (it asks PyPI).
check: $(STAMP)
	$(BIN)/bandit -r saas tenants publishers billing -lll -q
	$(BIN)/pip-audit -r requirements.lock --no-deps --progress-spinner off

## Re-resolve the dependencies of pyproject.toml into requirements.lock (after changing them, or to take updates).
lock:
	$(BIN)/python tools/lock.py

## Browser tests drive Debian's Chromium; install it when missing (never a downloaded browser).
chromium:
	@command -v chromium >/dev/null || { \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

clean-var:
	rm -rf var/
