# Two entry points on a fresh machine: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

.PHONY: install demo test test-set gpu-check
install: $(BIN)/python
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'

demo: install
	$(BIN)/mdfloss demo --out demo-output

test: install
	$(BIN)/python -m pytest -n 2 -q

# Detail-rich SR test crops (docs/test-set.md): pip photos into the venv, Debian photos via apt (root).
TEST_SET_DEB := lomiri-wallpapers-16.04
test-set: install
	$(BIN)/pip install -q -c constraints.txt scikit-image==0.26.0 scikit-learn==1.9.1
	dpkg -s $(TEST_SET_DEB) >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -q $(TEST_SET_DEB))
	$(BIN)/python scripts/build_test_set.py --out data/test-detail

# On a machine with one GPU, in at most 10 minutes: the CUDA test cases, the loss cost table and
# the paper preset's speed, in one results file (scripts/gpu_check.py).
gpu-check: install
	$(BIN)/python scripts/gpu_check.py --out benchmarks/results/gpu-check.md
