# The README's two commands: `make demo` and `make test`.
# TORCH is installed first and pinned: on our machines torch==2.13.0 is a CPU
# wheel on disk; an unpinned torch would pull several GB of CUDA packages.
PYTHON ?= python3
TORCH ?= torch==2.13.0
PIP = $(PYTHON) -m pip install -q --disable-pip-version-check
# napari needs an X display for its Qt window (offscreen Qt fails for it): a virtual one, Xvfb
XVFB = $(shell command -v xvfb-run >/dev/null && echo 'xvfb-run -a -s "-screen 0 1280x1024x24"')

.PHONY: install install-test install-system demo test docs

install:
	$(PIP) "$(TORCH)"
	$(PIP) -e .

# system packages (Chromium for the widget's browser tests, Xvfb for napari), then Python ones
install-system:
	bash .ci/system-packages

install-test: install-system
	$(PIP) "$(TORCH)"
	$(PIP) -e ".[test,docs,notebook,dask]"
	# the SAM 2.1 reference (tests only): without its torchvision/CUDA dependencies and CUDA extension,
	# built against the torch installed above (an isolated build would fetch a CUDA torch)
	SAM2_BUILD_CUDA=0 $(PIP) --no-deps --no-build-isolation sam2==1.1.0
	$(PIP) -e "plugins/napari-samkit[test]"

demo: install
	$(PYTHON) -m samkit demo --out samkit-demo

test: install-test
	QT_API=pyqt6 $(XVFB) $(PYTHON) -m pytest -ra --durations=15
	$(MAKE) --no-print-directory docs

# the documentation site, strictly (a broken link or missing page fails), into site/
docs:
	$(PIP) -e ".[docs]"
	$(PYTHON) -m mkdocs build --strict --quiet -f docs/mkdocs.yml -d ../site
