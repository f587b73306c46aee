"""MLIR dialects (agent, op, xfer), graph-to-IR emission, lowering and placement passes."""
