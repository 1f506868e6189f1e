# Two entry points on a fresh machine: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

.PHONY: install demo test
install: $(BIN)/python
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'

demo: install
	$(BIN)/mdfloss demo --out demo-output

test: install
	$(BIN)/python -m pytest -n 2 -q
