// The xfer dialect for upstream MLIR, written by hand to match plait/ir/dialects/xfer.py
// (tests/test_ir_upstream.py keeps every op, operand, result and attribute name in step).
// Every slot has its own constraint value: IRDL binds a constraint value to one attribute or type, so
// slots sharing one would be forced equal. For the same reason all values of one variadic slot must
// share one type upstream (tests/test_ir_upstream.py pins this limit).
irdl.dialect @xfer {
  irdl.type @handle

  irdl.operation @send {
    %value = irdl.any
    irdl.operands(value: %value)
    %handle = irdl.base @xfer::@handle
    irdl.results(handle: %handle)
    %src = irdl.base "#builtin.string"
    %dst = irdl.base "#builtin.string"
    %bytes = irdl.base "#builtin.integer"
    irdl.attributes {"src" = %src, "dst" = %dst, "bytes" = %bytes}
  }

  irdl.operation @recv {
    %handle = irdl.base @xfer::@handle
    irdl.operands(handle: %handle)
    %result = irdl.any
    irdl.results(result: %result)
    %src = irdl.base "#builtin.string"
    %dst = irdl.base "#builtin.string"
    %bytes = irdl.base "#builtin.integer"
    irdl.attributes {"src" = %src, "dst" = %dst, "bytes" = %bytes}
  }
}
