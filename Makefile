# The two commands: `make demo` (a real local cluster and the end-to-end demo)
# and `make test` (the whole suite). Both set everything up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export KAFKAOPS_HOME ?= $(CURDIR)/.kafkaops

.PHONY: demo test install kafka kafka-kraft unit typecheck clean images test-local test-kraft test-containers wheel constraints chaos

# pyproject.toml states ranges; constraints.txt pins the exact set that is tested.
$(BIN)/.installed: pyproject.toml constraints.txt
	@command -v java >/dev/null || { echo "java not found: install a Java 17 runtime (apt-get install openjdk-17-jre-headless)"; exit 1; }
	@command -v mvn >/dev/null || { echo "mvn not found: install Apache Maven (apt-get install maven)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

install: $(BIN)/.installed

kafka: install
	$(BIN)/kafkaops fetch

kafka-kraft: install
	$(BIN)/kafkaops fetch --mode kraft

demo: kafka
	-$(BIN)/kafkaops down >/dev/null 2>&1
	$(BIN)/kafkaops up --brokers 3
	$(BIN)/kafkaops demo; rc=$$?; $(BIN)/kafkaops down; exit $$rc

# `make test` = the local tier (real JVM clusters, ZooKeeper-mode Kafka 3.9), the KRaft pass
# (the integration tier again on Kafka 4.x) and the containers tier (needs Docker: started
# as root if none runs; fails, never skips, when it cannot).
test: test-local test-kraft test-containers

test-local: kafka
	$(BIN)/python -m pytest -p no:cacheprovider -ra --ignore=tests/containers $(PYTEST_ARGS)

# Every fixture cluster in KRaft mode (dedicated controllers, Kafka 4.x); tests marked
# zookeeper_mode are deselected here, those marked kraft_mode run only here. The chaos
# matrix's share-group cell (KRaft only) runs here too.
test-kraft: kafka kafka-kraft
	$(BIN)/python -m pytest -p no:cacheprovider -ra --kafka-mode=kraft tests/integration \
		tests/chaos/test_matrix.py::test_cells_that_cannot_run_here_say_so $(PYTEST_ARGS)

# --- containers (compose/, kafkaops/testing/containers.py) -----------------------------
# The containers tier: tests/containers (fixture, compose smoke, network partition) and the
# integration tests marked containers_tier (see tests/containers/conftest.py), on containers.
test-containers: images
	$(BIN)/python -m pytest -p no:cacheprovider -ra --kafka-backend=containers -m containers_tier \
		tests/containers tests/integration $(PYTEST_ARGS)

# Offline images: Debian minbase + JRE 17 (debootstrap, docker import) + the Maven-fetched jars
# (Kafka 3.9 and ZooKeeper; Kafka 4.x for compose/docker-compose.kraft.yml).
images: kafka kafka-kraft
	compose/dockerd.sh
	PYTHON=$(CURDIR)/$(BIN)/python compose/build-images.sh
# --- end containers ---------------------------------------------------------------------

# --- chaos (kafkaops/chaos) --------------------------------------------------------------
# The long matrix: every workload x every fault, longer cells, on a ZooKeeper-mode and a KRaft
# cluster (local JVMs) and the network cut on containers; JSON and Markdown in $(CHAOS_DIR).
# The short matrix is part of `make test` (tests/chaos; the network cut in the containers tier).
CHAOS_DURATION ?= 45
CHAOS_DIR ?= chaos-results
chaos: kafka images
	mkdir -p $(CHAOS_DIR)
	rc=0; \
	$(BIN)/kafkaops chaos run -w all -f all --duration $(CHAOS_DURATION) --hold 10 --mode zookeeper \
		--output $(CHAOS_DIR)/zookeeper.json || rc=1; \
	$(BIN)/kafkaops chaos run -w all -f all --duration $(CHAOS_DURATION) --hold 10 --mode kraft \
		--output $(CHAOS_DIR)/kraft.json || rc=1; \
	$(BIN)/kafkaops chaos run -w group -w aggregate -f network-cut -f leader-kill --duration $(CHAOS_DURATION) \
		--hold 10 --backend containers --output $(CHAOS_DIR)/containers.json || rc=1; \
	$(BIN)/kafkaops chaos table $(CHAOS_DIR)/zookeeper.json $(CHAOS_DIR)/kraft.json $(CHAOS_DIR)/containers.json \
		> $(CHAOS_DIR)/matrix.md; cat $(CHAOS_DIR)/matrix.md; exit $$rc
# --- end chaos --------------------------------------------------------------------------

# sdist and wheel in dist/ (setuptools would reuse a stale build/ or SOURCES.txt)
wheel: install
	rm -rf build kafkaops.egg-info
	$(BIN)/python -m build --outdir dist

# Re-resolve pyproject.toml's ranges (every extra) in a clean venv and pin the result.
constraints:
	rm -rf .constraints-venv
	$(PYTHON) -m venv .constraints-venv
	.constraints-venv/bin/pip install -q -e '.[dev]'
	{ sed -n '/^#/p' constraints.txt; .constraints-venv/bin/pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf .constraints-venv

unit: install
	$(BIN)/python -m pytest -p no:cacheprovider tests/unit

typecheck: install
	$(BIN)/mypy

clean:
	-$(BIN)/kafkaops down
	rm -rf $(VENV) .kafkaops
