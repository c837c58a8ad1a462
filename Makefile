# The two commands of the README: `make test` and `make demo`. Each sets up .venv on its own.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
# PyTorch's CPU wheels (2.13.0+cpu sorts above PyPI's CUDA 2.13.0, so pip takes it). Empty it to use PyPI's build,
# or install your CUDA build into .venv before `make` (it is kept: it already satisfies TORCH_SPEC).
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: test demo lint install info models report study clean torch-check

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# CPU torch first (docs/install.md): torch alone from the CPU index (--no-deps, so its dependencies are not looked
# up there too), then its dependencies, the package and its test extras from the default index.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --no-deps "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)

# ruff: lint and formatting (pyproject.toml's [tool.ruff]); CI runs it.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

demo: $(STAMP)
	@if [ -f app.py ]; then $(PY) app.py; else $(VENV)/bin/mae-hf info; fi

# The bundled models (issue 5): exact commands, seeds and hyperparameters. `make models` retrains both into
# pretrained/ (checkpoints stay out of git through the folder's .gitignore); see docs/RESULTS.md.
DAE_ARGS := --model dae --dataset mnist --seed 0 --num_train_epochs 40 --per_device_train_batch_size 64 \
	--learning_rate 1e-2 --num_warmup_steps 100 --checkpoints_total_limit 1
MAE_ARGS := --model mae --preset mnist --dataset mnist --seed 0 --num_train_epochs 60 --per_device_train_batch_size 64 \
	--learning_rate 1.5e-3 --num_warmup_steps 200 --checkpoints_total_limit 1

models: $(STAMP)
	$(PY) train_accelerate.py $(DAE_ARGS) --output_dir pretrained/dae-mnist --overwrite_output_dir
	$(PY) train_accelerate.py $(MAE_ARGS) --output_dir pretrained/mae-mnist --overwrite_output_dir

# The results page (issue 5): the full report on the bundled models, then docs/RESULTS.md from its markdown.
report: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/mae-hf report --dae pretrained/dae-mnist --mae pretrained/mae-mnist --dataset mnist \
		--split test --n 1000 --n_train 4000 --seed 0 --out docs/results --no_progress
	{ cat docs/results_notes.md; sed -E -e 's#\]\(([A-Za-z0-9_.-]+\.(png|csv|json|html))\)#](results/\1)#g' \
		-e 's/^(#+) /#\1 /' docs/results/report.md; } > docs/RESULTS.md

# The architecture x corruption study (issue 7): 4 cells x 3 seeds into outputs/study (model folders stay out of
# git; rerunning skips finished runs), then docs/STUDY.md and docs/study/ from its files.
STUDY_OUT ?= outputs/study
study: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/mae-hf study --dataset mnist --seeds 3 --out $(STUDY_OUT)
	mkdir -p docs/study && cp $(STUDY_OUT)/study.json $(STUDY_OUT)/*.png docs/study/
	{ cat docs/study_notes.md; sed -E -e 's#\]\(([A-Za-z0-9_.-]+\.png)\)#](study/\1)#g' -e 's/^(#+) /#\1 /' \
		$(STUDY_OUT)/study.md; } > docs/STUDY.md

# Which torch a fresh machine gets from TORCH_SPEC/TORCH_INDEX: pip's resolution in isolated mode (no local pip
# configuration), without installing anything.
torch-check: | $(PY)
	@echo "torch a fresh machine would install (a +cpu version from download.pytorch.org is the CPU build):"
	@$(PY) -m pip install --isolated --dry-run --ignore-installed --quiet --report - --no-deps "$(TORCH_SPEC)" \
		$(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) | $(PY) -c "import json, sys; \
		[print(i['metadata']['name'], i['metadata']['version'], i['download_info']['url']) for i in json.load(sys.stdin)['install']]"

info: $(STAMP)
	$(VENV)/bin/mae-hf info

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
