# Quick start: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The pinned CPU build of torch is installed first so that nothing later pulls a CUDA build.
TORCH_PIN := torch==2.13.0

.PHONY: demo test install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet $(TORCH_PIN)
	echo "$(TORCH_PIN)" > $(VENV)/constraints.txt
	$(BIN)/pip install --quiet -c $(VENV)/constraints.txt -e ".[label,test,plot]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/tridft demo

test: install
	$(BIN)/python -m pytest -q tests src/tridft

clean:
	rm -rf $(VENV) runs
