"""Hand-written IRDL definitions of the agent, op and xfer dialects, loaded by upstream MLIR (plait.ir.upstream)."""
