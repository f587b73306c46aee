"""Control flow of an agent: upstream's `scf` ops with agent ops in their regions, and plait's rules for them.

IRDL-defined ops have no traits, so none can end a region upstream; plait's loops, branches and maps are
therefore `scf` ops, which upstream verifies (region arguments, `scf.yield`/`scf.condition` types), and
their planning figures are discardable `agent.*` attributes on them, which plait verifies:

- loop: `scf.while` whose `before` region is the body (it computes `done` and the next carried values and
  ends in `scf.condition(not done)`); `agent.max_iters` (i64 >= 1) and `agent.iters` (#agent.dist, mean
  in [1, max_iters], p95 <= max_iters).
- branch: `scf.index_switch` on an `agent.select_arm` index; arm i is case i, the last arm the default;
  `agent.probabilities` (one f64 per arm, summing to 1).
- map: `scf.for` over `0 .. agent.count(items)` whose body takes `agent.item(items, i)` and appends its
  answer to the accumulator; `agent.len` (#agent.dist) is the expected element count. The iterations
  are independent (only the accumulator threads through), so they run concurrently.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects import arith, scf
from xdsl.dialects.builtin import ArrayAttr, DenseArrayBase, FloatAttr, IndexType, IntegerAttr, i1, i64
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue

from plait.ir.dialects._base import f64, fail, num, show
from plait.ir.dialects.agent import AppendOp, CountOp, DistAttr, EmptyOp, ItemOp, check_dist, dist

MAX_ITERS, ITERS, PROBABILITIES, LENGTH = "agent.max_iters", "agent.iters", "agent.probabilities", "agent.len"


def loop(inits: Sequence[SSAValue], body: Block, done: SSAValue, carried: Sequence[SSAValue], *, max_iters: int,
         expected_iters: float, expected_iters_p95: float | None = None) -> scf.WhileOp:
    """A do-while loop: `body` (whose arguments are the carried values) computes `done` and the next
    `carried` values; the loop ends after the iteration whose `done` is true, or after max_iters."""
    true = arith.ConstantOp(IntegerAttr(1, i1))
    go = arith.XOrIOp(done, true)            # continue while not done
    body.add_ops([true, go, scf.ConditionOp(go, *carried)])
    after = Block(arg_types=[v.type for v in inits])
    after.add_op(scf.YieldOp(*after.args))
    op = scf.WhileOp(inits, [v.type for v in inits], Region(body), Region(after))
    op.attributes[MAX_ITERS] = IntegerAttr(max_iters, i64)
    op.attributes[ITERS] = DistAttr(expected_iters, expected_iters_p95)
    return op


def branch(selector: SSAValue, arms: Sequence[Block], result_types: Sequence[Attribute], *,
           probabilities: Sequence[float]) -> scf.IndexSwitchOp:
    """Run arm `selector` (an index from agent.select_arm); each arm block ends in scf.yield."""
    cases = DenseArrayBase.from_list(i64, list(range(len(arms) - 1)))
    op = scf.IndexSwitchOp(selector, cases, Region(arms[-1]), [Region(b) for b in arms[:-1]], result_types)
    op.attributes[PROBABILITIES] = ArrayAttr([f64(p) for p in probabilities])
    return op


def arms(op: scf.IndexSwitchOp) -> list[Region]:
    """The regions of a branch in arm order: the cases, then the default (the last arm)."""
    return [*op.case_regions, op.default_region]


def map_items(items: SSAValue, result_type: Attribute, *, expected_len: float,
              expected_len_p95: float | None = None) -> tuple[list[Operation], Block, SSAValue]:
    """The ops before a map's scf.for, its body block (arguments: index, accumulator) and the element.

    The caller emits the body into the block after the element, then calls `end_map`.
    """
    count, zero, one = CountOp(items), arith.ConstantOp(IntegerAttr(0, IndexType())), \
        arith.ConstantOp(IntegerAttr(1, IndexType()))
    empty = EmptyOp(result_type)
    body = Block(arg_types=[IndexType(), result_type])
    item = ItemOp(items, body.args[0])
    body.add_op(item)
    loop_op = scf.ForOp(zero, count, one, [empty], Region(body))
    loop_op.attributes[LENGTH] = DistAttr(expected_len, expected_len_p95)
    return [count, zero, one, empty, loop_op], body, item.result


def end_map(body: Block, answer: SSAValue) -> None:
    """Append the element's answer to the accumulator and yield it."""
    append = AppendOp(body.args[1], answer)
    body.add_ops([append, scf.YieldOp(append)])


def verify_control(op: Operation) -> None:
    """plait's rules for an scf op of an agent (no-op for other ops)."""
    if isinstance(op, scf.WhileOp):
        _verify_loop(op)
    elif isinstance(op, scf.IndexSwitchOp):
        _verify_branch(op)
    elif isinstance(op, scf.ForOp) and LENGTH in op.attributes:
        if not isinstance(op.attributes[LENGTH], DistAttr):
            fail(op, f"attribute '{LENGTH}' must be an #agent.dist (the expected element count)")
        check_dist(op, LENGTH)


def _verify_loop(op: scf.WhileOp) -> None:
    for name, kind in ((MAX_ITERS, IntegerAttr), (ITERS, DistAttr)):
        if not isinstance(op.attributes.get(name), kind):
            fail(op, f"an agent loop needs attribute '{name}' ({'i64' if kind is IntegerAttr else '#agent.dist'})")
    if (most := num(op.attributes[MAX_ITERS])) < 1:
        fail(op, f"attribute '{MAX_ITERS}' must be >= 1, got {most}")
    mean, _ = dist(op, ITERS)
    if not 1 <= mean <= most:
        fail(op, f"attribute '{ITERS}' has mean {mean}; it must lie between 1 and {MAX_ITERS} ({most})")
    check_dist(op, ITERS, MAX_ITERS)
    cond = op.before_region.block.last_op
    if isinstance(cond, scf.ConditionOp) and tuple(cond.args.types) != tuple(op.res.types):
        fail(op, f"its body passes on values of types ({', '.join(map(show, cond.args.types))}), but the loop "
                 f"carries ({', '.join(map(show, op.res.types))})")


def _verify_branch(op: scf.IndexSwitchOp) -> None:
    probs_attr = op.attributes.get(PROBABILITIES)
    if not isinstance(probs_attr, ArrayAttr) or not all(isinstance(p, FloatAttr) for p in probs_attr.data):
        fail(op, f"an agent branch needs attribute '{PROBABILITIES}' (one f64 per arm)")
    probs = [num(p) for p in probs_attr.data]
    if len(probs) != (n := len(op.case_regions) + 1):
        fail(op, f"attribute '{PROBABILITIES}' has {len(probs)} entries, but the op has {n} arms")
    if any(not 0 <= p <= 1 for p in probs) or abs(sum(probs) - 1) > 1e-6:
        fail(op, f"attribute '{PROBABILITIES}' must be in [0, 1] and sum to 1, got {probs}")
