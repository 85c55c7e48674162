# Set-up is part of every target: a fresh clone needs only Python 3.11, git and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.9

.PHONY: demo test setup lint bench bench-gate bench-warehouse docs airflow-ui psql quarantine replay release warehouse stop clean

demo: setup            ## run the main job on the embedded default and print a summary
	$(BIN)/python -m local demo

test: setup            ## the whole test suite (lint included), on a throwaway PostgreSQL
	$(BIN)/pytest

setup: $(VENV)/.synced

$(VENV)/.synced: pyproject.toml uv.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
		{ echo "Python 3.11 is required (set PYTHON=/path/to/python3.11)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --frozen --python $(BIN)/python
	@touch $@

lint: setup            ## ruff only (SQL lint needs a database: it runs inside `make test`)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: setup           ## extract+land 1,000,000 records vs a plain COPY (minutes)
	$(BIN)/python -m bench.extract_land --records 1000000

bench-gate: setup      ## the quality gate on 1,000,000 rows vs one hand-written SQL pass (minutes)
	$(BIN)/python -m bench.gate --rows 1000000 --repeat 3

bench-warehouse: setup ## dbt full build of the national profile (~5M records) vs incremental after 1% changed
	$(BIN)/python -m bench.warehouse

.PHONY: bench-feed
bench-feed: setup      ## national feed: 1,000,000 records to the stand-in intake vs a plain POST (minutes)
	$(BIN)/python -m bench.national_feed --records 1000000 --repeat 3

.PHONY: bench-latency
bench-latency: setup   ## 50 single-record change events → visible in the marts, p50/p95 (~11 minutes)
	$(BIN)/python -m bench.event_latency --events 50 --spacing 4

docs: setup            ## dbt documentation of the warehouse (every model and column) in dbt_project/target/docs
	$(BIN)/python -m local docs

airflow-ui: setup      ## Airflow UI on the local stack (Ctrl-C stops it)
	$(BIN)/python -m local airflow-ui

psql: setup            ## SQL shell on the warehouse
	$(BIN)/python -m local psql

quarantine: setup      ## what waits in quarantine, per source and reason, oldest first
	$(BIN)/python -m local quarantine $(SOURCE)

replay: setup          ## re-check open quarantine with the current rules [SOURCE=… BATCH=…]
	$(BIN)/python -m local quarantine replay $(if $(SOURCE),--source $(SOURCE)) $(if $(BATCH),--batch $(BATCH))

release: setup         ## publish a batch a batch-level rule blocked: BATCH=… NOTE="why"
	$(BIN)/python -m local quarantine release $(BATCH) --note "$(NOTE)"

.PHONY: sources
sources: setup         ## per source entity: events pending (LATE past its limit), lag, last batch [SOURCE=…]
	$(BIN)/python -m local sources $(SOURCE)

.PHONY: pause resume backfill
pause: setup           ## pause every DAG of a source in Airflow (REST API): SOURCE=…
	$(BIN)/python -m local pause $(SOURCE)

resume: setup          ## resume every DAG of a source in Airflow (REST API): SOURCE=…
	$(BIN)/python -m local resume $(SOURCE)

backfill: setup        ## trigger ops__backfill: SOURCE=… ENTITY=… FROM=YYYY-MM-DD TO=YYYY-MM-DD
	$(BIN)/python -m local backfill $(SOURCE) $(ENTITY) $(FROM) $(TO)

.PHONY: feed feed-deliver feed-reconcile feed-pause feed-resume feed-resend
feed: setup            ## the national feed's ledger per province and entity (ops.feed_status)
	$(BIN)/python -m local feed status

feed-deliver: setup    ## deliver the published changes to the national intake now [ENTITY=…]
	$(BIN)/python -m local feed deliver $(if $(ENTITY),--entity $(ENTITY))

feed-reconcile: setup  ## published vs acknowledged vs held nationally, per province and entity
	$(BIN)/python -m local feed reconcile

feed-pause: setup      ## pause a province's feed: PROVINCE=37 [ENTITY=st_task] REASON="…"
	$(BIN)/python -m local feed pause --province "$(PROVINCE)" $(if $(ENTITY),--entity $(ENTITY)) --reason "$(REASON)"

feed-resume: setup     ## resume it: PROVINCE=37 [ENTITY=st_task]
	$(BIN)/python -m local feed resume --province "$(PROVINCE)" $(if $(ENTITY),--entity $(ENTITY))

feed-resend: setup     ## re-send everything after the national side lost data: PROVINCE=37 [ENTITY=…] REASON="…"
	$(BIN)/python -m local feed resend --province "$(PROVINCE)" $(if $(ENTITY),--entity $(ENTITY)) --reason "$(REASON)"

warehouse: setup       ## dbt build + publish if every blocking test passed (no Airflow)
	$(BIN)/python -m local warehouse

stop:                  ## stop the embedded PostgreSQL
	$(BIN)/python -m local stop

clean: stop            ## delete local state (embedded warehouse data, Airflow home, logs)
	rm -rf .local dbt_project/target dbt_project/logs
