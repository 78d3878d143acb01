# Quick start: `make demo` runs the default workflow and builds its report,
# `make test` runs the test suite. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= all

.PHONY: install demo report test clean

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/snakemake --cores $(CORES) --workflow-profile profiles/local
	$(MAKE) report

report: install
	$(BIN)/snakemake --workflow-profile profiles/local --report results/report.html
	@echo "Report written to results/report.html"

test: install
	$(BIN)/python -m pytest

clean:
	rm -rf results logs .snakemake
