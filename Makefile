# carehub: the start-up contract (see README.md).
#   make demo   - install, start (embedded) PostgreSQL/Redis, migrate, seed, run web + worker + scheduler
#   make test   - install, start (embedded) PostgreSQL/Redis when none is reachable, lint, run the suite
#   make lock   - regenerate requirements/*.txt (pinned, hashed) from pyproject.toml
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8000
# `make test` runs the suite on this many pytest-xdist workers (`auto`: one per core; `0`: in
# this one process).
PYTEST_WORKERS ?= auto

.PHONY: install demo test lint format pytest clean browser bench lock simulate

install: $(STAMP)

# Installs exactly what requirements/lock.txt pins (every file checked against its hash), then
# carehub itself without resolving anything (ADR 0014). `make lock` regenerates the locks.
LOCK   := requirements/lock.txt
PIP_LOCKED := -m pip install --quiet --require-hashes --no-deps
PIP_SELF   := -m pip install --quiet --no-deps --no-build-isolation

$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit("carehub needs Python 3.11+") if sys.version_info < (3, 11) else None'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) $(PIP_LOCKED) -r $(LOCK)
	$(PY) $(PIP_SELF) -e .
	touch $(STAMP)

# Regenerate the locks from pyproject.toml (after adding or changing a dependency), keeping
# every pin that still fits; `make lock UPGRADE=1` moves every package to its newest allowed
# version, `make lock UPGRADE="django celery"` only those. Commit requirements/*.txt.
UV_COMPILE = $(VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	$(if $(filter 1,$(UPGRADE)),--upgrade,$(foreach p,$(UPGRADE),--upgrade-package $(p)))
lock:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	test -x $(VENV)/bin/uv || $(PY) -m pip install --quiet 'uv>=0.13'
	$(UV_COMPILE) pyproject.toml requirements/build.in --extra dev --extra embedded -o $(LOCK)
	$(UV_COMPILE) pyproject.toml requirements/build.in -c $(LOCK) -o requirements/production.txt
	$(UV_COMPILE) pyproject.toml requirements/build.in --extra dev --extra embedded --extra bench \
	    -c $(LOCK) -o requirements/bench.txt

demo: $(STAMP)
	DJANGO_SETTINGS_MODULE=config.settings.local PORT=$(PORT) $(PY) -m carehub.devstack demo

# Every Django or Celery process names its settings: without DJANGO_SETTINGS_MODULE, manage.py,
# Celery and WSGI/ASGI use config.settings.production (the demo sets config.settings.local).
test: $(STAMP) lint browser
	DJANGO_SETTINGS_MODULE=config.settings.test \
	    $(PY) -m carehub.devstack run -- $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile \
	    $(PYTEST_ARGS)

# The browser tests drive the system's Chromium when there is one (CHROMIUM_PATH, chromium,
# google-chrome); otherwise Playwright downloads its own build once.
browser: $(STAMP)
	@if [ -n "$$CHROMIUM_PATH" ] || command -v chromium >/dev/null || \
	    command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null; then :; \
	else echo "No system Chromium: installing Playwright's"; $(PY) -m playwright install chromium; fi

lint: $(STAMP)
	$(PY) -m carehub.devstack.lock
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Benchmarks (bench/, docs/adr/0008-benchmarks.md): `make bench`, `make bench BENCH_ARGS=--quick`,
# one scenario: `make bench BENCH_ARGS="--quick p3"`. Results in bench/results/.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) pyproject.toml requirements/bench.txt
	$(PY) $(PIP_LOCKED) -r requirements/bench.txt
	touch $(BENCH_STAMP)

bench: $(STAMP) $(BENCH_STAMP)
	$(PY) -m carehub.devstack run -- $(PY) -m bench $(BENCH_ARGS)

# The built-in pathway and its cohort through the simulator (README, "Simulating a pathway"):
# simulation/report.html and report.json. `make simulate SIM_ARGS="--days 365 --patients 1000"`.
SIM_ARGS ?= --days 540 --seed 1

simulate: $(STAMP)
	DJANGO_SETTINGS_MODULE=config.settings.local $(PY) manage.py pathway simulate intractable-pain \
	    --cohort carehub/simulation/cohorts/intractable-pain.yaml --out simulation $(SIM_ARGS)

clean:
	rm -rf $(VENV) .devstack .pytest_cache
