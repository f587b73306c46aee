"""plait's three dialects: `agent` (workflow steps), `op` (per-device operators), `xfer` (transfers)."""
