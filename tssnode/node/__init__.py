"""The node: wires the network, the ledger, the store and protocol sessions together."""
