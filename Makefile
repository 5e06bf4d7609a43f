# Two entry points: `make demo` and `make test`. Both bootstrap .venv on a fresh machine
# with only Python 3.11 (packages come from PyPI; nothing else is downloaded).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export ATENDE_DATA_DIR ?= $(CURDIR)/.atende-data

.PHONY: demo test install lint typecheck contracts browser mailserver i18n clean

$(STAMP): pyproject.toml requirements/embedder.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements/embedder.txt
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/atende demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy src

contracts: $(STAMP)
	$(BIN)/lint-imports

# The dashboard's translations: extract its strings, update the .po catalogs (docs/DASHBOARD.md)
i18n: $(STAMP)
	BIN=$(BIN) sh scripts/i18n

# The browser tests' Chromium: ATENDE_TEST_BROWSER, /usr/bin/chromium, or Debian's package
# installed when running as root (scripts/test-browser says what to install otherwise).
browser:
	@sh scripts/test-browser >/dev/null

# The e-mail tests' IMAP and POP3 server: ATENDE_TEST_DOVECOT, /usr/sbin/dovecot, or Debian's
# dovecot-core, dovecot-imapd and dovecot-pop3d installed when running as root
# (scripts/test-mailserver says what to install otherwise).
mailserver:
	@sh scripts/test-mailserver >/dev/null

# pytest-xdist workers: much of the suite waits on PostgreSQL, servers and atende processes,
# so two workers pay even on two cores. Each has its own PostgreSQL; a file's tests stay
# together on one worker, the slowest files first (tests/conftest.py, SLOW_FILES_FIRST).
# TEST_WORKERS=0 runs everything in this one process.
TEST_WORKERS ?= 2

test: $(STAMP) browser mailserver lint typecheck contracts
	@browser="$$(sh scripts/test-browser)" && dovecot="$$(sh scripts/test-mailserver)" && \
		ATENDE_TEST_BROWSER="$$browser" ATENDE_TEST_DOVECOT="$$dovecot" \
		$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
