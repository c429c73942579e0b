"""The control API: HTTP JSON on loopback with a bearer token, plus an event stream."""
