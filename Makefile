# Set-up is idempotent: .venv is made once, packages are installed again only when
# requirements.txt or pyproject.toml change (the stamp file records the last install).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test test-fast lint smoke install-desktop bench clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: $(STAMP)
	$(PY) main.py

test: lint
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

# the suite without the slow tests (training recipes, several processes, notebook kernels), for
# a quick check while working; CI runs `make test`, everything
test-fast: lint
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(PY) -m ruff check .

smoke: $(STAMP)
	$(PY) main.py --smoke-test

# the launcher (applications menu entry + icons) for this user, running this checkout's .venv
install-desktop: $(STAMP)
	$(PY) tools/install_desktop.py

bench: $(STAMP)
	$(PY) benchmarks/query_speed.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
