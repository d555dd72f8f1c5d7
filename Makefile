# STJ: `make demo` runs the offline pipeline and serves the model; `make test` runs the tests.
# Both set everything up on a fresh machine (virtualenv from the pinned lock file).
PY      ?= python3.11
VENV    ?= .venv
BIN     := $(VENV)/bin
CONFIG  ?= configs/demo.yaml
PYTEST_ARGS ?=
PORT    ?= 5000
DOCS_PORT ?= 8001

.PHONY: install system-deps demo run serve catalog team-up team-down test test-fast lint docs docs-serve mlflow-ui bench-venv bench-scrape bench-train bench-scale bench-costs bench-head bench-serve bench-browser bench-uploads soak clean

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	@# setuptools warns on every editable install that a folder named like a package could shadow it: nothing to act on
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install -q --no-deps -e .
	touch $@

# onnxruntime-web's WebAssembly runtime (14 MB) for the page's offline mode: fetched from npm, not committed
# (its JavaScript loader, ort.wasm.min.js, is committed at the same version)
ORT_VERSION := 1.30.0
ORT_WASM    := serving/static/vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm
$(ORT_WASM):
	@tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent onnxruntime-web@$(ORT_VERSION) >/dev/null \
	  && tar xzf onnxruntime-web-$(ORT_VERSION).tgz package/dist/ort-wasm-simd-threaded.wasm \
	  && cd - >/dev/null && mv $$tmp/package/dist/ort-wasm-simd-threaded.wasm $@.part && mv $@.part $@; \
	  status=$$?; rm -rf $$tmp; exit $$status

install: $(VENV)/.installed $(ORT_WASM) ## virtualenv with the pinned dependencies and the `stj` command

system-deps: ## from Debian: nginx + its headers-more module (in front of `stj serve`), Chromium + chromedriver (browser tests), PostgreSQL (make team-up); root or sudo
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && [ -x /usr/sbin/nginx ] \
	  && [ -f /usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so ] \
	  && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then echo "system packages present"; \
	else SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver \
	    nginx-light libnginx-mod-http-headers-more-filter postgresql; fi

demo: install system-deps ## catalog + full pipeline on the demo config, then serve the champion model
	@exec $(BIN)/stj demo --config $(CONFIG)

run: install ## the pipeline once, on CONFIG
	$(BIN)/stj run --config $(CONFIG)

serve: install system-deps ## serve the champion model of CONFIG
	$(BIN)/stj serve --config $(CONFIG)

catalog: install ## serve the local Amazon-like catalog on http://127.0.0.1:8765
	$(BIN)/stj catalog --config $(CONFIG)

# two pytest-xdist workers: much of the suite waits on subprocesses and servers (tests sharing the reference run
# stay on one worker); TEST_WORKERS= runs it in one process
TEST_WORKERS ?= -n 2 --dist loadscope
# coverage's data files (one per process) go to one folder outside the checkout's top level, named absolutely:
# the suite's subprocesses run in other folders too
COVERAGE_DIR := $(CURDIR)/.coverage-data

test: install system-deps ## the whole suite (what CI runs via .ci/run), 15-45 min on 2 cores by CPU; prints the product's line coverage
	@rm -rf $(COVERAGE_DIR) && mkdir -p $(COVERAGE_DIR)
	@COVERAGE_FILE=$(COVERAGE_DIR)/.coverage $(BIN)/coverage run -m pytest -q $(TEST_WORKERS) $(PYTEST_ARGS); status=$$?; \
	  COVERAGE_FILE=$(COVERAGE_DIR)/.coverage $(BIN)/coverage combine -q $(COVERAGE_DIR) >/dev/null 2>&1; \
	  COVERAGE_FILE=$(COVERAGE_DIR)/.coverage $(BIN)/coverage report --format=total 2>/dev/null \
	    | sed 's/^/line coverage of the product (subprocesses included): /; s/$$/ %/'; exit $$status

test-fast: install ## every test that needs no pipeline run, stj subprocess, server, browser or big model: ~3 min
	$(BIN)/pytest -q -m "not slow and not browser" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

team-up: install system-deps ## PostgreSQL, Prefect + MLflow servers on it, Dask (2 workers), a Prefect worker: `source .team/env` to use them
	@$(BIN)/python -m team up

team-down: ## stop everything team-up started
	@$(BIN)/python -m team down

docs: install ## the docs site into site/: the reference pages regenerated from the code, then MkDocs (fails on any warning)
	$(BIN)/python -m docs.gen_reference
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	@echo "docs: site/index.html (make docs-serve: http://127.0.0.1:$(DOCS_PORT))"

docs-serve: docs ## the docs site on http://127.0.0.1:$(DOCS_PORT), rebuilt as pages change
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict -a 127.0.0.1:$(DOCS_PORT)

mlflow-ui: install ## MLflow UI on the embedded store: http://127.0.0.1:$(PORT), opened on the runs side by side (e.g. make mlflow-ui PORT=5001)
	@STJ_TRACKING__UI_URL=http://127.0.0.1:$(PORT) $(BIN)/stj status -c $(CONFIG) 2>/dev/null | tail -1 || true
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port $(PORT)

# Scrapy's ImagesPipeline needs Pillow in Scrapy's own environment: without it the pipeline is silently
# disabled and the spider saves nothing.
.venv-scrapy/.installed: Makefile
	$(PY) -m venv .venv-scrapy
	.venv-scrapy/bin/pip install -q "scrapy==2.19.0" "pillow==13.0.0"
	.venv-scrapy/bin/python -c "import scrapy, PIL"
	touch $@

.venv-bentoml/.installed: Makefile
	$(PY) -m venv .venv-bentoml
	.venv-bentoml/bin/pip install -q "bentoml==1.4.40" "openvino==2026.4.1" "pillow==13.0.0" "numpy==2.4.6"
	.venv-bentoml/bin/python -c "import bentoml, openvino, PIL"
	touch $@

bench-venv: .venv-scrapy/.installed .venv-bentoml/.installed ## Scrapy and BentoML in virtualenvs of their own, for the side-by-side benchmarks

bench-scrape: install bench-venv ## STJ's scraper vs Scrapy on the local catalog with 100 ms latency
	$(BIN)/python benchmarks/scrape.py

bench-train: install ## reference in-graph training vs STJ's cached-embedding train stage (demo data)
	$(BIN)/python benchmarks/train.py

bench-scale: install ## the real pipeline at 6 000 photos (PHOTOS="6000 60000" for 100x) + a weekly +10 % run, the algorithmic parts at 600 000 (ALGORITHMS=0 skips them; TEAM=1: on team-up's services, two Dask workers, needs system-deps; docs/scaling.md)
	$(BIN)/python benchmarks/pipeline_scale.py --photos $(or $(PHOTOS),6000) --algorithms $(or $(ALGORITHMS),600000) $(if $(TEAM),--team)

bench-costs: install ## per-photo costs on the demo data (verify, embed in-process vs Dask shards, head): run `make run` first
	$(BIN)/python benchmarks/scale.py

bench-head: install ## head training's peak memory at 25 and 100 epochs, streamed vs every epoch gathered up front
	$(BIN)/python benchmarks/head_memory.py

bench-serve: install system-deps bench-venv ## STJ's server vs mlflow models serve and BentoML (run `make run` first)
	$(BIN)/python benchmarks/serve.py

bench-browser: install system-deps ## the page's in-browser model vs the server on the test photos (run `make run` first)
	$(BIN)/python benchmarks/browser.py --config $(CONFIG)

bench-uploads: install ## worst-case uploads: time and peak memory, bounded vs plain decoding
	$(BIN)/python benchmarks/uploads.py

soak: install system-deps ## 10 minutes of mixed good and bad uploads at 16 clients
	$(BIN)/python benchmarks/soak.py

clean: ## remove what the demo made: data, runs, models, accounts + prediction history, exports, browser models, monitor reports (keeps the virtualenv; asks before removing .team/)
	rm -rf data mlflow.db mlartifacts checkpoints history.db history.db-wal history.db-shm exported browser-models .bench-scale monitor-reports site
	@# .team/ holds the team setup's PostgreSQL cluster (its runs, models and accounts): never removed unasked
	@if [ -d .team ]; then \
	  if [ -t 0 ]; then \
	    printf 'also remove .team/ (the team setup: its PostgreSQL data, runs, models and accounts)? [y/N] '; read answer; \
	    case "$$answer" in [yY]*) $(BIN)/python -m team down >/dev/null 2>&1; rm -rf .team && echo "removed .team/";; *) echo "kept .team/";; esac; \
	  else echo "kept .team/ (the team setup's data): run make clean in a terminal to be asked"; fi; \
	fi
