"""The running station: wires the network, the recognition engine and the gallery together (no Qt)."""
