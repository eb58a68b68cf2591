"""The datagram format, by concern; ``network.protocol`` gathers the public names in one place."""
