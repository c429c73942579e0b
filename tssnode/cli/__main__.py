"""`python -m tssnode.cli COMMAND …`: the same as the `tssnode` console script (how the
command line starts a node detached, and how the tests and the console run it)."""

from tssnode.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
