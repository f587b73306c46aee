"""The runtime: workers, routing, batching and the transfer layer."""
