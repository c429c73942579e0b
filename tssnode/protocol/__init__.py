"""CGGMP21 as pure round objects: keygen, aux-info/refresh, presign, sign, identification.

No I/O here. A transport (the in-memory runner, `tssnode.testing.protocol_runner`, or the
node over libp2p) moves the signed `Message` envelopes that rounds emit and hands each
one to the session's current round. Session ids are made in `ssid`. See PROTOCOL.md and
STYLE.md for the shape.
"""
