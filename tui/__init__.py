"""The operator console: a Textual app that shows one node and starts keygen, refresh,
presigning and signing through the node's control API (docs/api.md).

The console is a client like any other: it imports nothing from `tssnode` but the API
client, so it can attach to a node on another machine. `model`, `state`, `actions`,
`digests` and `retry` are plain Python (no Textual); the widgets only draw them.
"""
