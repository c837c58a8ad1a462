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

.PHONY: test demo lint install info models models-fashion report report-fashion results-page study study-fashion study-pages clean torch-check

# The first `make demo` or `make test` sets up .venv (a few minutes): each step says what it does, and pip shows
# what it downloads and installs.
$(PY):
	@echo "==> Setting up $(VENV) (first use only, a few minutes): a $(PYTHON) virtual environment"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# CPU torch first (docs/install.md): torch alone from the CPU index (--no-deps, so its dependencies are not looked
# up there too), then its dependencies, the package and its test extras from the default index.
$(STAMP): setup.cfg pyproject.toml | $(PY)
	@echo "==> [1/3] PyTorch ($(TORCH_SPEC)$(if $(TORCH_INDEX), CPU build from $(TORCH_INDEX)))"
	$(PY) -m pip install --no-deps "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	@echo "==> [2/3] PyTorch's own dependencies"
	$(PY) -m pip install "$(TORCH_SPEC)"
	@echo "==> [3/3] mae_hf and what it needs (transformers, gradio, the test tools, ...)"
	$(PY) -m pip install -e ".[dev]"
	touch $(STAMP)
	@echo "==> $(VENV) is ready"

install: $(STAMP)

test: $(STAMP)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)

# ruff: lint and formatting (pyproject.toml's [tool.ruff]); CI runs it.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

demo: $(STAMP)
	@if [ -f app.py ]; then $(PY) app.py; else $(VENV)/bin/mae-hf info; fi

# MNIST's 60,000 training and 10,000 test digits: a Hub id, or a folder of MNIST's IDX files (no network).
MNIST ?= ylecun/mnist

# The bundled models: exact commands, seeds and hyperparameters (docs/RESULTS.md says why these). `make models`
# retrains both into pretrained/, keeping every epoch's checkpoint (out of git through the folder's .gitignore) for
# the learning curves, which `mae-hf curve` writes into the folders.
DAE_ARGS := --model dae --seed 0 --num_train_epochs 20 --per_device_train_batch_size 64 \
	--learning_rate 1e-2 --num_warmup_steps 100 --checkpoints_total_limit 0
MAE_ARGS := --model mae --preset mnist --seed 0 --num_train_epochs 35 --per_device_train_batch_size 64 \
	--learning_rate 2e-3 --num_warmup_steps 500 --config_overrides decoder_num_hidden_layers=4 \
	--checkpoints_total_limit 0

models: $(STAMP)
	$(PY) train_accelerate.py $(DAE_ARGS) --dataset $(MNIST) --output_dir pretrained/dae-mnist --overwrite_output_dir
	$(PY) train_accelerate.py $(MAE_ARGS) --dataset $(MNIST) --output_dir pretrained/mae-mnist --overwrite_output_dir
	HF_HUB_OFFLINE=1 $(VENV)/bin/mae-hf curve pretrained/dae-mnist --dataset $(MNIST)
	HF_HUB_OFFLINE=1 $(VENV)/bin/mae-hf curve pretrained/mae-mnist --dataset $(MNIST)
	HF_HUB_OFFLINE=1 $(VENV)/bin/mae-hf readout --dae pretrained/dae-mnist --mae pretrained/mae-mnist --dataset $(MNIST)

# Fashion-MNIST's 60,000 training and 10,000 test images: a Hub id, or a folder of its IDX files. The recipes are the
# MNIST ones unless the validation split chooses otherwise.
FASHION ?= zalando-datasets/fashion_mnist
FASHION_DAE_ARGS ?= $(DAE_ARGS)
FASHION_MAE_ARGS ?= $(MAE_ARGS)

models-fashion: $(STAMP)
	$(PY) train_accelerate.py $(FASHION_DAE_ARGS) --dataset $(FASHION) --output_dir pretrained/dae-fashion \
		--overwrite_output_dir
	$(PY) train_accelerate.py $(FASHION_MAE_ARGS) --dataset $(FASHION) --output_dir pretrained/mae-fashion \
		--overwrite_output_dir
	HF_HUB_OFFLINE=1 $(VENV)/bin/mae-hf curve pretrained/dae-fashion --dataset $(FASHION)
	HF_HUB_OFFLINE=1 $(VENV)/bin/mae-hf curve pretrained/mae-fashion --dataset $(FASHION)
	HF_HUB_OFFLINE=1 $(VENV)/bin/mae-hf readout --dae pretrained/dae-fashion --mae pretrained/mae-fashion \
		--dataset $(FASHION)

# The results page: the report on the bundled models (figures and analyses on the first 2,000 official test digits;
# the scorecard on all 10,000, its classifiers fit on the 4,000 embedded digits and on all of MNIST's 60,000
# training digits), the app's own analysis of the bundled models (pretrained/app-analysis-mnist.npz, so the app's tabs fill
# in at once on a first start), then docs/RESULTS.md from its markdown.
report: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/mae-hf report --dae pretrained/dae-mnist --mae pretrained/mae-mnist --dataset mnist \
		--split test --n 2000 --n_train 4000 --scorecard --scorecard_n 10000 --seed 0 --full_train $(MNIST) \
		--out docs/results --no_progress
	HF_HUB_OFFLINE=1 $(VENV)/bin/mae-hf app-analysis --dae pretrained/dae-mnist --mae pretrained/mae-mnist \
		--out pretrained/app-analysis-mnist.npz
	$(MAKE) results-page

# The same for the bundled Fashion-MNIST models: docs/results-fashion/, pretrained/app-analysis-fashion.npz, then
# docs/RESULTS_FASHION.md (offline: FASHION=../shared/fashion-mnist).
report-fashion: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/mae-hf report --dae pretrained/dae-fashion --mae pretrained/mae-fashion \
		--dataset $(FASHION) --split test --n 2000 --n_train 4000 --scorecard --scorecard_n 10000 --seed 0 \
		--full_train $(FASHION) --out docs/results-fashion --no_progress
	HF_HUB_OFFLINE=1 $(VENV)/bin/mae-hf app-analysis --dae pretrained/dae-fashion --mae pretrained/mae-fashion \
		--dataset $(FASHION) --out pretrained/app-analysis-fashion.npz
	$(MAKE) results-page

# docs/RESULTS.md without rerunning the report: its title, the answer to each claim in words (`mae-hf answer`, from
# docs/results/metrics.json and docs/study/study.json; the README's answer block gets the same), the notes with the
# models' kept readouts (`mae-hf readout --table`) in them, then the report's markdown. `make report` and `make study` end with it.
results-page: $(STAMP)
	$(VENV)/bin/mae-hf readout --table --dae pretrained/dae-mnist --mae pretrained/mae-mnist > docs/results/readouts.md
	set -e; { head -n 1 docs/results_notes.md; echo; $(VENV)/bin/mae-hf answer; tail -n +2 docs/results_notes.md | \
		sed -e '/^<!-- readouts -->$$/r docs/results/readouts.md' -e '/^<!-- readouts -->$$/d'; \
		sed -E -e 's#\]\(([A-Za-z0-9_.-]+\.(png|csv|json|html))\)#](results/\1)#g' -e 's/^(#+) /#\1 /' \
		docs/results/report.md; } > docs/RESULTS.md
	$(VENV)/bin/mae-hf answer --readme README.md
	if [ -f docs/results-fashion/report.md ]; then set -e; \
		$(VENV)/bin/mae-hf readout --table --dae pretrained/dae-fashion --mae pretrained/mae-fashion \
			> docs/results-fashion/readouts.md; \
		{ head -n 1 docs/results_fashion_notes.md; echo; \
		$(VENV)/bin/mae-hf answer --metrics docs/results-fashion/metrics.json \
			--study "$$(test -f docs/study-fashion/study.json && echo docs/study-fashion/study.json)"; \
		tail -n +2 docs/results_fashion_notes.md | \
		sed -e '/^<!-- readouts -->$$/r docs/results-fashion/readouts.md' -e '/^<!-- readouts -->$$/d'; \
		sed -E -e 's#\]\(([A-Za-z0-9_.-]+\.(png|csv|json|html))\)#](results-fashion/\1)#g' -e 's/^(#+) /#\1 /' \
		docs/results-fashion/report.md; } > docs/RESULTS_FASHION.md; fi

# The architecture x corruption study: 4 cells and the capacity control x 3 seeds on MNIST's 60,000 digits, each
# analysed at 6 budgets. Every seed trains all 20 epochs (STUDY_OTHER_SEEDS_EPOCHS=4 stops seeds 1 and 2 after 4, as
# the first study on 2 CPU cores did; a later run with a larger value goes on from their checkpoints). The runs go to
# $(STUDY_OUT) (not committed); each run's analysis to docs/study/runs/ (committed as it finishes: a rerun skips it,
# even on a new machine), then the study pages (study-pages). `make study STUDY_ARGS=--no_train` rebuilds the page
# from the committed analyses alone.
STUDY_OUT ?= outputs/study
# Both pages open with each claim on both datasets (a study without its study.json yet: "no results yet").
STUDY_ACROSS = $(VENV)/bin/mae-hf study-across MNIST=docs/study/study.json Fashion-MNIST=docs/study-fashion/study.json
STUDY_OTHER_SEEDS_EPOCHS ?= 20
study: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/mae-hf study --dataset $(MNIST) --seeds 3 --out $(STUDY_OUT) --results docs/study \
		--other_seeds_epochs $(STUDY_OTHER_SEEDS_EPOCHS) $(STUDY_ARGS)
	$(MAKE) study-pages results-page

# The same study on Fashion-MNIST (offline: FASHION=../shared/fashion-mnist), every seed all 20 epochs: the runs to
# $(STUDY_FASHION_OUT), each run's analysis to docs/study-fashion/runs/ (committed as it finishes), the page to
# docs/STUDY_FASHION.md.
STUDY_FASHION_OUT ?= outputs/study-fashion
study-fashion: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/mae-hf study --dataset $(FASHION) --seeds 3 --out $(STUDY_FASHION_OUT) \
		--results docs/study-fashion $(STUDY_ARGS)
	$(MAKE) study-pages results-page

# Both study pages from the committed studies (no training, no analysis): each opens with its notes and each claim
# on both datasets (the table depends on both studies, so both pages are rewritten whenever either study is), then
# its page (the answers first), then how the study stands and is built (docs/study_methods.md).
study-pages: $(STAMP)
	{ cat docs/study_notes.md; $(STUDY_ACROSS); echo; \
		sed -E -e 's#\]\(([A-Za-z0-9_.-]+\.png)\)#](study/\1)#g' -e 's/^(#+) /#\1 /' docs/study/study.md; echo; \
		cat docs/study_methods.md; } > docs/STUDY.md
	if [ -f docs/study-fashion/study.md ]; then set -e; \
		{ cat docs/study_fashion_notes.md; $(STUDY_ACROSS); echo; \
		sed -E -e 's#\]\(([A-Za-z0-9_.-]+\.png)\)#](study-fashion/\1)#g' -e 's/^(#+) /#\1 /' \
		docs/study-fashion/study.md; echo; cat docs/study_methods.md; } > docs/STUDY_FASHION.md; fi

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
