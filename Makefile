# The two commands: `make demo` runs the main job, `make test` runs the tests.
# Both create .venv with Python >= 3.12 and install tvbeta into it when needed.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Find a Python >= 3.12: $PYTHON, python3.12 / python3.13 on PATH, or pyenv's installs.
define find_python
for c in $${PYTHON:-} python3.12 python3.13 $$HOME/.pyenv/versions/3.1[2-9]*/bin/python3; do \
  if command -v $$c >/dev/null 2>&1 && $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
    echo $$c; exit 0; fi; \
done; echo "error: tvbeta needs Python >= 3.12; set PYTHON=/path/to/python3.12" >&2; exit 1
endef

.PHONY: demo test bench lint clean chromium notebooks
$(STAMP): pyproject.toml
	@set -e; base=$$($(find_python)); \
	[ -x $(PY) ] || $$base -m venv $(VENV); \
	$(PY) -m pip install --quiet --upgrade pip; \
	$(PY) -m pip install --quiet -e '.[dev]'; \
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tvbeta demo

# Headless Chromium for the figure/report browser checks (Debian package; tests skip without it).
# Best effort: installed only where we are root with apt-get, as on the dev and CI machines.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
	  || echo "note: chromium not installed; browser tests will be skipped"; }

test: $(STAMP) chromium
	$(PY) -m pytest -n 2 --dist loadgroup -q

bench: $(STAMP)
	$(PY) -m bench

# Execute notebooks/*.ipynb in place with their full settings (several minutes: 02 samples eight
# Bayesian fits); the outputs are then saved in the files, which the repository keeps without
# outputs. TVBETA_NOTEBOOK_QUICK=1 make notebooks uses the small settings of the tests.
# JUPYTER_PATH: the kernel "python3" is the venv's own (its "python" is this venv's interpreter).
notebooks: $(STAMP)
	@set -e; cd notebooks; for nb in *.ipynb; do \
	  echo "executing notebooks/$$nb"; \
	  JUPYTER_PATH=$(abspath $(VENV))/share/jupyter ../$(VENV)/bin/jupyter-execute --inplace \
	    --timeout=-1 --kernel_name=python3 "$$nb"; \
	done

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

clean:
	rm -rf $(VENV) output
