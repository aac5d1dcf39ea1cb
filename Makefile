# Two commands do everything on a fresh machine (see README.md):
#   make train   - set up .venv, get Fashion-MNIST, train the notebook-004 CNN end to end
#   make test    - set up .venv, run the whole test suite
# Both create .venv on first use and reuse it afterwards (re-installed when pyproject.toml changes).

VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.cnnzoo-installed
FASHION := /usr/share/datasets/fashion-mnist
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
ARGS    ?=

.PHONY: train test fashion-mnist

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --upgrade --quiet pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

fashion-mnist:
	@[ -f $(FASHION)/train-images-idx3-ubyte.gz ] || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist; }

train: $(STAMP) fashion-mnist
	$(PY) -m cnnzoo.train model=fashion_cnn $(ARGS)

test: $(STAMP) fashion-mnist
	$(PY) -m pytest $(ARGS)
