# The two commands the README promises: `make demo` and `make test`.
# Both create .venv when it is missing and install what they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test test-fast test-colab demo install compiled bench clean

# One test worker per core and one more (pytest-xdist; tests/conftest.py sets the count and
# gives each worker one compute thread).
# `make test XDIST=` runs the suite in one process.
XDIST ?= -n auto --dist worksteal

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# pip byte-compiles what it installs on one core (about 40 s of torch): not here.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q --no-compile -e '.[train,dev,export]'
	touch $(STAMP)

# Everything installed, byte-compiled on every core (47 s here: 232 MB of bytecode, three
# times what the project's processes import), for the demo and the benchmarks, whose
# processes must not compile torch again each (PYTHONDONTWRITEBYTECODE, as on our machines).
# A file that does not compile on this Python (torch ships one for 3.12) is only imported
# from source, as pip leaves it too: its error is not fatal.
DEPS_COMPILED := $(VENV)/.compiled
$(DEPS_COMPILED): $(STAMP)
	$(BIN)/python -m compileall -q -j 0 "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" >/dev/null || true
	touch $(DEPS_COMPILED)

install: $(DEPS_COMPILED)

# The project's own modules, byte-compiled before the tests and the demo start hundreds of
# `python -m drivestage` and worker processes: with PYTHONDONTWRITEBYTECODE set (as on our
# machines) an editable install compiles every module in every process, 0.13 s each time.
# compileall writes anyway, and only what changed since.
compiled: $(STAMP)
	$(BIN)/python -m compileall -q -j 0 drivestage trainer tests >/dev/null

# The type checker first (strict on drivestage; configured in pyproject.toml), then the tests.
# On a failure the names of the failed tests come last, where a CI log's tail shows them.
# The tests write the bytecode of what they import as they go (PYTHONDONTWRITEBYTECODE
# emptied): the first process that imports a module compiles it, the others read it. That
# is the third of the installed packages the tests use, not all of them up front (CI's
# clean clone: 47 s of compileall before the first test).
test: compiled
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m mypy
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -ra $(XDIST) $(PYTEST_ARGS) || { \
	  echo "failed tests:"; cat .pytest_cache/v/cache/lastfailed 2>/dev/null; echo; exit 1; }

# Developers: skip the slow end-to-end tests.
test-fast: compiled
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m mypy
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -ra -m 'not slow' $(XDIST) $(PYTEST_ARGS)

# The suite on Colab's stack: its Python (3.13) and every package at the version Colab ships
# (tests/data/colab-*-pip-freeze.txt, by scripts/colab_constraints.py), not the newest
# releases `make test` takes. Not part of `make test`: torch for another Python is a
# download of several GB. COLAB_PY names that Python (pyenv: PYENV_VERSION=3.13.0).
COLAB_PY ?= python3.13
COLAB_VENV := .venv-colab
test-colab:
	test -x $(COLAB_VENV)/bin/python || $(COLAB_PY) -m venv $(COLAB_VENV)
	$(COLAB_VENV)/bin/python scripts/colab_constraints.py > $(COLAB_VENV)/constraints.txt
	$(COLAB_VENV)/bin/python -m pip install -q --no-compile -e '.[train,dev,export]' -c $(COLAB_VENV)/constraints.txt
	PYTHONDONTWRITEBYTECODE= $(COLAB_VENV)/bin/python -m pytest -q -ra $(XDIST) $(PYTEST_ARGS)

demo: compiled $(DEPS_COMPILED)
	$(BIN)/python -m trainer.demo

bench: $(DEPS_COMPILED)
	$(BIN)/python bench/pull.py
	$(BIN)/python bench/pull_folder.py
	$(BIN)/python bench/push.py
	$(BIN)/python bench/prune.py
	$(BIN)/python bench/train_step.py
	$(BIN)/python bench/data_pipeline.py
	$(BIN)/python bench/epoch.py

clean:
	rm -rf $(VENV) $(COLAB_VENV) build *.egg-info .pytest_cache
