# The two commands: `make demo` (a real local cluster and the end-to-end demo)
# and `make test` (the whole suite). Both set everything up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export KAFKAOPS_HOME ?= $(CURDIR)/.kafkaops

.PHONY: demo test install kafka unit typecheck clean images

$(BIN)/.installed: pyproject.toml
	@command -v java >/dev/null || { echo "java not found: install a Java 17 runtime (apt-get install openjdk-17-jre-headless)"; exit 1; }
	@command -v mvn >/dev/null || { echo "mvn not found: install Apache Maven (apt-get install maven)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed

kafka: install
	$(BIN)/kafkaops fetch

demo: kafka
	-$(BIN)/kafkaops down >/dev/null 2>&1
	$(BIN)/kafkaops up --brokers 3
	$(BIN)/kafkaops demo; rc=$$?; $(BIN)/kafkaops down; exit $$rc

test: kafka
	$(BIN)/python -m pytest -p no:cacheprovider -ra $(PYTEST_ARGS)

unit: install
	$(BIN)/python -m pytest -p no:cacheprovider tests/unit

typecheck: install
	$(BIN)/mypy

clean:
	-$(BIN)/kafkaops down
	rm -rf $(VENV) .kafkaops
