"""Test machinery that drives real node processes: isolated hosts for a test network in
Linux network namespaces (`netns`) and the manifest-driven fault runner (`faults`,
`tssnode faults MANIFEST`).

Nothing in the node itself imports this package; it sits above `tssnode.node` and uses
the HTTP API the way an operator or a client would.
"""
