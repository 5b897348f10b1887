# mindcode: `make test` installs (once) and runs the whole suite; `make install` only installs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test test-unit tokenizer clean

install: $(STAMP)

# torch first and pinned: 2.13.0 is a CPU wheel here; an unpinned torch pulls several GB of CUDA packages.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[all,test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

# Re-train the tiny tokenizer asset (deterministic; only needed when its corpus changes).
tokenizer: $(STAMP)
	$(BIN)/python scripts/train_tokenizer.py --output mindcode/assets/tiny_code.model

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
