# The README's two commands: `make demo` and `make test`.
# TORCH is installed first and pinned: on our machines torch==2.13.0 is a CPU
# wheel on disk; an unpinned torch would pull several GB of CUDA packages.
PYTHON ?= python3
TORCH ?= torch==2.13.0
PIP = $(PYTHON) -m pip install -q --disable-pip-version-check

.PHONY: install install-test demo test docs

install:
	$(PIP) "$(TORCH)"
	$(PIP) -e .

install-test:
	$(PIP) "$(TORCH)"
	$(PIP) -e ".[test,docs]"

demo: install
	$(PYTHON) -m samkit demo --out samkit-demo

test: install-test
	$(PYTHON) -m pytest -ra --durations=15
	$(PYTHON) -m mkdocs build --strict --quiet -f docs/mkdocs.yml -d ../site
