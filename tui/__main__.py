"""`python -m tui ...` is `tssnode console ...`."""

from tui.cli import main

raise SystemExit(main())
