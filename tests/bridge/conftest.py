"""The bridge application's tests run on the ledger tests' validators, genesis and
transactions."""

from tests.ledger.conftest import genesis, keys, tx

__all__ = ["genesis", "keys", "tx"]
