# Two commands: `make demo` and `make test`. Both set up .venv first (idempotent).
PY := .venv/bin/python
export PYTHONUNBUFFERED := 1
# MetaWorld's scripted policies warn on every construction; keep the demo's output readable
export PYTHONWARNINGS := ignore::UserWarning,ignore::DeprecationWarning

.PHONY: setup demo test test-slow test-all bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m maa_core demo

# pytest-xdist workers; files that must share one carry `pytestmark = pytest.mark.xdist_group(...)`;
# TEST_WORKERS=0 runs the suite in one process
TEST_WORKERS ?= 2
PYTEST = $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup
# the quick tier (under 10 min on 2 cores); the long end-to-end runs are marked slow (pytest.ini)
test: setup
	$(PYTEST) -m "not slow" test
test-slow: setup
	$(PYTEST) -m slow test
test-all: setup
	$(PYTEST) test

bench: setup  # the quick one; the others (and their long runs) are listed in BENCHMARKS.md
	$(PY) benchmarks/bench_generate.py

clean:
	rm -rf .venv runs
