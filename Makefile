# ClipStream: every target installs what it needs, idempotently, from a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMPS := $(VENV)/.stamps
# Debian packages the runtime or tests need (none yet: PyAV bundles FFmpeg; the broker comes from PyPI).
APT_PACKAGES ?=

.PHONY: setup setup-train demo test test-unit test-integration bench clean

setup: $(STAMPS)/dev

$(STAMPS)/apt:
	@scripts/ensure-apt.sh $(APT_PACKAGES)
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/dev: pyproject.toml | $(STAMPS)/apt
	@test -x $(BIN)/python || { echo "==> creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "==> installing clipstream and its dev tools into $(VENV)"
	@$(BIN)/pip install --progress-bar on -q --upgrade pip
	@$(BIN)/pip install --progress-bar on -e ".[dev]"
	@mkdir -p $(STAMPS) && touch $@

# torch + torchvision for training and ONNX export (large; not needed to serve or test).
setup-train: $(STAMPS)/train
$(STAMPS)/train: $(STAMPS)/dev
	@$(BIN)/pip install --progress-bar on -e ".[dev,train]"
	@touch $@

demo: setup
	$(BIN)/clipstream demo

test: setup
	$(BIN)/pytest -ra

test-unit: setup
	$(BIN)/pytest -ra tests/unit tests/contract

test-integration: setup
	$(BIN)/pytest -ra tests/integration

bench: setup
	$(BIN)/python -m benchmarks

clean:
	rm -rf var build *.egg-info .pytest_cache
