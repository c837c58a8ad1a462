# The two commands of the README: `make test` and `make demo`. Each sets up .venv on its own.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: test demo install info models report clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# CPU torch first (see README, "Why a CPU build of torch"), then the package and its test extras.
$(STAMP): setup.cfg pyproject.toml | $(PY)
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	@if [ -f app.py ]; then $(PY) app.py; else $(VENV)/bin/mae-hf info; fi

info: $(STAMP)
	$(VENV)/bin/mae-hf info

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
