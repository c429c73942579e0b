"""Benchmarks: `tssnode bench <name>` runs `tssnode.bench.<name>.main`.

Each benchmark prints its table and, with `--write FILE`, replaces its own section of
docs/benchmarks.md (between `<!-- bench:NAME -->` markers), so benchmarks can be re-run
one at a time without touching each other's results. Timings are never asserted in tests.
"""
