# The two commands a newcomer runs: `make demo` and `make test`.
# Both create .venv and install what they need; only Python 3.11+, Go and make are assumed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check lint typecheck imports unit build-k8s build-node bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# As root, `flowrun dev build` also installs the node's Debian packages (containerd, runc, ...).
build-k8s: $(STAMP)
	$(BIN)/flowrun dev build

# The node's Pod image, from the Dockerfile, cached by content hash (needs root: chroot).
build-node: build-k8s
	if [ "$$(id -u)" = 0 ]; then $(BIN)/flowrun dev image; \
	else echo "not root: skipping the node image (node tests will skip)"; fi

demo: build-k8s
	$(BIN)/python scripts/demo.py

lint: $(STAMP)
	$(BIN)/ruff check operator tests benchmarks scripts
	$(BIN)/ruff format --check operator tests benchmarks scripts

typecheck: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

check: lint typecheck imports

# The slowest tests are listed at the end: the suite must stay well inside CI's 90 minutes.
test: build-node check
	$(BIN)/pytest --durations=30

bench: $(STAMP)
	$(BIN)/python benchmarks/engine.py
	$(BIN)/python benchmarks/operator.py
	$(BIN)/python benchmarks/status_writes.py --companions
	$(BIN)/python benchmarks/big_run_status.py
	if [ "$$(id -u)" = 0 ]; then $(BIN)/python benchmarks/product_path.py; \
	else echo "not root: skipping benchmarks/product_path.py (it needs the dev node)"; fi
	$(BIN)/python benchmarks/restart.py
	$(BIN)/python benchmarks/masked_output.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
