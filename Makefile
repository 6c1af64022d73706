# Two commands on a fresh machine: `make run` (chat with the default model) and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MODEL ?= qwen2.5-coder-0.5b-instruct

.PHONY: setup run serve test unit golden pull clean

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

serve: $(STAMP)
	$(BIN)/fastcoder pull $(MODEL)
	$(BIN)/fastcoder serve -m $(MODEL)

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
	$(BIN)/fastcoder pull gemma-3-270m
	$(BIN)/python scripts/make_golden.py --model qwen2.5-coder-0.5b-instruct
	$(BIN)/python scripts/make_golden.py --model gemma-3-270m
	$(BIN)/python scripts/make_tokenizer_golden.py --model qwen2.5-coder-0.5b-instruct
	$(BIN)/python scripts/make_tokenizer_golden.py --model gemma-3-270m
	$(BIN)/python scripts/make_moe_golden.py

clean:
	rm -rf $(VENV) build *.egg-info

# llama.cpp peer for `fastcoder bench --compare llama.cpp`, built from source for this CPU.
# GCC 12's _tile_loadconfig() tells the compiler it reads only 8 bytes, so on AMX CPUs (Sapphire
# Rapids and later, where GGML_NATIVE turns ggml's AMX kernels on) GCC drops the stores that fill the
# tile config and `ldtilecfg` faults: SIGSEGV inside llama_decode on the first prompt. Both builds
# below compile against a copy of the compiler's amxtileintrin.h whose asm operands cover the whole
# 64-byte config (an unchanged copy where the header is already right). Builds are niced, 2 jobs.
LLAMA_CPP_PYTHON ?= 0.3.36
LLAMA_CPP_AMXFIX := build/amxfix
LLAMA_CPP_FLAGS := -DCMAKE_C_FLAGS=-I$(abspath $(LLAMA_CPP_AMXFIX)) -DCMAKE_CXX_FLAGS=-I$(abspath $(LLAMA_CPP_AMXFIX))
LLAMA_CPP_SRC := build/llama_cpp_python-$(LLAMA_CPP_PYTHON)/vendor/llama.cpp
.PHONY: llama-cpp-amxfix llama-cpp-python llama-cpp

llama-cpp-amxfix:
	mkdir -p $(LLAMA_CPP_AMXFIX)
	hdr=$$($${CC:-cc} -print-file-name=include)/amxtileintrin.h; \
	if [ -f "$$hdr" ]; then sed \
	  -e 's/(\*((const void \*\*)__config))/(*(const unsigned char (*)[64]) __config)/' \
	  -e 's/(\*((void \*\*)__config))/(*(unsigned char (*)[64]) __config)/' \
	  "$$hdr" > $(LLAMA_CPP_AMXFIX)/amxtileintrin.h; fi

# The `bench` extra's llama-cpp-python (no CPU wheels exist; ~7 min on 2 cores). No wheel cache:
# pip would otherwise reuse a previously built (broken) wheel whatever CMAKE_ARGS say.
llama-cpp-python: llama-cpp-amxfix
	test -x $(BIN)/pip || $(MAKE) setup
	CMAKE_ARGS="-DLLAVA_BUILD=OFF $(LLAMA_CPP_FLAGS) $(LLAMA_CPP_CMAKE_ARGS)" \
	CMAKE_BUILD_PARALLEL_LEVEL=2 nice -n 19 $(BIN)/pip install --no-cache-dir --force-reinstall \
	  --no-deps --no-binary llama-cpp-python 'llama-cpp-python==$(LLAMA_CPP_PYTHON)'
	# its runtime dependencies (--no-deps above keeps pip from rebuilding torch/numpy pins)
	$(BIN)/pip install -q diskcache 'jinja2>=2.11.3' 'typing-extensions>=4.5.0' 'numpy>=1.20.0'

# llama.cpp's own llama-bench and llama-server (static) from the same sources (the sdist's
# vendor/llama.cpp), into build/llama.cpp/bin/.
llama-cpp: llama-cpp-amxfix
	test -x $(BIN)/pip || $(MAKE) setup
	test -d $(LLAMA_CPP_SRC) || { $(BIN)/pip download -q --no-deps --no-binary llama-cpp-python \
	  -d build 'llama-cpp-python==$(LLAMA_CPP_PYTHON)' && \
	  tar xzf build/llama_cpp_python-$(LLAMA_CPP_PYTHON).tar.gz -C build; }
	nice -n 19 cmake -S $(LLAMA_CPP_SRC) -B build/llama.cpp -DCMAKE_BUILD_TYPE=Release \
	  -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
	  -DLLAMA_BUILD_APP=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF $(LLAMA_CPP_FLAGS) \
	  $(LLAMA_CPP_CMAKE_ARGS)
	CMAKE_BUILD_PARALLEL_LEVEL=2 nice -n 19 cmake --build build/llama.cpp --target llama-bench llama-server
