# FaceStation: `make demo` and `make test` do all the set-up on a fresh clone (Python 3.11 only).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed


.PHONY: demo test lint typecheck contracts pytest bench clean package package-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall when the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --upgrade "pip>=24"
	$(BIN)/python -m pip install -e ".[station,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python main.py --demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

contracts: $(STAMP)
	$(BIN)/lint-imports

# Two runs: the default path with TensorFlow unimportable in every process it starts (tests/no_tensorflow),
# as on a station installed without the tensorflow extra; then the tests of that extra (marked tf), with it.
NO_TF := $(CURDIR)/tests/no_tensorflow

pytest: $(STAMP)
	QT_QPA_PLATFORM=offscreen PYTHONPATH=$(NO_TF)$${PYTHONPATH:+:$$PYTHONPATH} $(BIN)/python -m pytest -q -m "not package and not tf"
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -m "tf and not package"

test: lint typecheck contracts pytest

bench: $(STAMP)
	$(BIN)/python bench/network.py

# The frozen station app, one folder: dist/facestation/facestation (packaging/facestation.spec).
# Its smoke test is separate because the build takes minutes.
package: $(STAMP)
	$(BIN)/python -m pip install -e ".[station,package]"
	$(BIN)/pyinstaller --noconfirm --distpath dist --workpath build/pyinstaller packaging/facestation.spec
	@du -sh dist/facestation

package-test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -m package tests/test_frozen_app.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
