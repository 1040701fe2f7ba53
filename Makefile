# Quanyu — the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
CONSUMERS ?= 100000
# pytest worker processes for `make test` (a file's tests stay in one; 0: no workers)
TEST_WORKERS ?= 2
export QUANYU_DATA_DIR ?= quanyu-data
export QUANYU_PORT ?= $(PORT)

.PHONY: demo test check lint format typecheck bench serve clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

## demo: build .venv, load the demo tenant, start the server, print the URL and keys
demo: $(VENV)/.installed
	$(BIN)/quanyu demo --consumers $(CONSUMERS)
	$(BIN)/quanyu serve --port $(PORT)

## test: build .venv with the dev extras and run every test (what CI runs)
test: check

check: $(VENV)/.installed-dev chromium
	$(BIN)/ruff check quanyu tests benchmarks
	$(BIN)/ruff format --check quanyu tests benchmarks
	$(BIN)/mypy quanyu
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check quanyu tests benchmarks

format: $(VENV)/.installed-dev
	$(BIN)/ruff format quanyu tests benchmarks
	$(BIN)/ruff check --fix quanyu tests benchmarks

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy quanyu

## bench: run every benchmark in benchmarks/ and print its figures
bench: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks

serve: $(VENV)/.installed
	$(BIN)/quanyu serve --port $(PORT)

## chromium: Debian's headless Chromium for browser tests (installed when missing)
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium could not be installed: browser tests will be skipped"; }
	@fc-list :lang=zh 2>/dev/null | grep -q . || { \
	  echo "installing a CJK font so the console's Chinese text renders in screenshots"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null) \
	  || echo "no CJK font could be installed: Chinese text will show as boxes"; }

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
