"""tssnode: validator nodes that hold threshold ECDSA keys (CGGMP21 over secp256k1) together."""

__version__ = "0.1.0"
