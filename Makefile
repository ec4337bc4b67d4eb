# The two commands of the README: `make dev` and `make test`. Both set up a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8080

.PHONY: dev test install bench clean

install: $(VENV)/.installed devtools/node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-standins.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -r requirements-standins.txt
	touch $@

# firebase-tools, for the Auth emulator only
devtools/node_modules/.installed: devtools/package.json devtools/package-lock.json
	cd devtools && npm ci --no-audit --no-fund --loglevel=error
	touch $@

dev: install
	PORT=$(PORT) $(PY) -m devtools.dev

test: install
	$(PY) -m pytest

clean:
	rm -rf $(VENV) devtools/node_modules .pytest_cache

# deployments benchmark: 200 deploy actions across 50 deployments through the real queue
bench-deploy: install
	$(PY) -m bench.deploy_jobs
