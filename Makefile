# Every target creates its own virtual environment in .venv and installs the project into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run demo stop simulate test test-fast test-slow check bench bench-crypto bench-protocol bench-net bench-ledger bench-cluster bench-console bench-burst bench-throughput bench-bridge pool contracts clean

# The bridge's EVM parts (solc-js, OpenZeppelin's contracts, anvil) come from npm, exactly
# as package-lock.json lists them, into node_modules/ next to .venv.
$(STAMP): pyproject.toml package.json package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	npm ci --no-audit --no-fund --loglevel=error
	touch $(STAMP)

# The main job: a local 4-node network on loopback with the bridge, then node 1's console.
# Beside the nodes (data in .local/): the regtest Bitcoin service on 127.0.0.1:18443 and
# anvil on 127.0.0.1:8545 (chain 31337), a 3-of-4 bridge key, the gateway deployed for it
# and the bridge's settings voted at every node. A second `make run` finds it all up and
# changes nothing. Quitting the console leaves it running; `make stop` stops it all.
run: $(STAMP)
	$(BIN)/tssnode cluster up 4 --bridge
	$(BIN)/tssnode console --config configs/local/node1.toml

# Headless, on a throw-away network of its own (a temporary directory, loopback ports the
# system picks; never the network `make run` started, which it leaves alone): a regtest
# service, anvil and 4 nodes; a 3-of-4 bridge key (threshold 2: any 3 sign), the gateway,
# the settings; a deposit address at node 2, 0.5 BTC paid to it and mined, the nodes' mint
# signature (checked with ecrecover), the mint on the gateway and the wrapped balance, each
# step printed; then everything is stopped and the directory removed.
# (`tssnode cluster demo 4` without --bridge: a key and a signed message only.)
demo: $(STAMP)
	$(BIN)/tssnode cluster demo 4 --bridge

# Stops the nodes, then anvil (it keeps its chain in .local/anvil/state.json) and the
# regtest service (its chain stays in .local/regtest).
stop: $(STAMP)
	$(BIN)/tssnode cluster down 4

# Lint, format check, the layering contracts (import-linter, pyproject.toml) and strict
# typing of tssnode/.
check: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check tssnode tui tests scripts
	$(BIN)/ruff format --check tssnode tui tests scripts
	$(BIN)/mypy
	$(BIN)/mypy --strict tui

# What CI runs: the checks, the fast tier, and one full-size end-to-end run (2048-bit
# Paillier, n = 3). `make test-slow` runs the whole slow tier.
test: check
	$(BIN)/pytest -q -m "not slow"
	$(BIN)/pytest -q -m slow -k "test_full_size_end_to_end_n3 or test_a_signer_killed"

test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow"

test-slow: $(STAMP)
	$(BIN)/pytest -q -m slow

bench: bench-crypto bench-protocol bench-net bench-ledger bench-cluster bench-console bench-burst bench-throughput bench-bridge

bench-crypto: $(STAMP)
	$(BIN)/tssnode bench crypto --write docs/benchmarks.md

bench-protocol: $(STAMP)
	$(BIN)/tssnode bench protocol --write docs/benchmarks.md

bench-net: $(STAMP)
	$(BIN)/tssnode bench net --write docs/benchmarks.md

bench-ledger: $(STAMP)
	$(BIN)/tssnode bench ledger --write docs/benchmarks.md

bench-cluster: $(STAMP)
	$(BIN)/tssnode bench cluster --write docs/benchmarks.md

bench-console: $(STAMP)
	$(BIN)/tssnode bench console --write docs/benchmarks.md

bench-burst: $(STAMP)
	$(BIN)/tssnode bench burst --count 200 --write docs/benchmarks.md

bench-throughput: $(STAMP)
	$(BIN)/tssnode bench throughput --write docs/benchmarks.md

bench-bridge: $(STAMP)
	$(BIN)/tssnode bench bridge --write docs/benchmarks.md

# Recompile the gateway's contracts (contracts/*.sol) into the committed ABI and bytecode
# (tssnode/bridge/contracts/*.json) with solc-js from node_modules, offline.
contracts: $(STAMP)
	$(BIN)/python scripts/compile_contracts.py

# Regenerate the committed safe-prime pools (test data; about a minute on 2 cores).
pool: $(STAMP)
	$(BIN)/python scripts/make_prime_pool.py

# Everything in one process (no network): keygen, aux-info, presign, sign.
simulate: $(STAMP)
	$(BIN)/tssnode demo

clean:
	rm -rf .local $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
