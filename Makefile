# Two commands on a fresh machine: `make run` (chat with the default model) and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MODEL ?= qwen2.5-coder-0.5b-instruct

.PHONY: setup run test unit golden pull clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# torch 2.13.0 CPU build first, so the generic `torch` requirement never pulls a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/fastcoder pull $(MODEL)
	$(BIN)/fastcoder run -m $(MODEL)

pull: $(STAMP)
	$(BIN)/fastcoder pull $(MODEL)

test: $(STAMP)
	$(BIN)/fastcoder pull qwen2.5-coder-0.5b-instruct
	$(BIN)/fastcoder pull gemma-3-270m
	$(BIN)/python -m pytest -q tests

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

# Regenerates the committed reference fixtures with transformers (needs the `reference` extra).
golden: $(STAMP)
	$(BIN)/pip install -q -e '.[reference]'
	$(BIN)/fastcoder pull qwen2.5-coder-0.5b-instruct
	$(BIN)/python scripts/make_golden.py

clean:
	rm -rf $(VENV) build *.egg-info
