"""Run HiGHS (through highspy) on a placement Model: the LP relaxation, or the MILP from an incumbent."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

INF = float("inf")


@dataclass
class HighsResult:
    status: str  # optimal | time limit | infeasible | ...
    x: NDArray[np.float64] | None
    objective: float
    bound: float  # best proven lower bound on the objective
    seconds: float


def _quiet_highs(highspy: Any) -> Any:
    """A Highs instance with logging off; its constructor prints a banner to fd 1, which would end up in
    `plait plan`'s output (and in JSON a user pipes on), so fd 1 points at /dev/null while it runs."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            h = highspy.Highs()
            h.setOptionValue("output_flag", False)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    return h


def run(model: Any, integer: bool, time_limit_s: float, mip_rel_gap: float,
        incumbent: tuple[list[int], list[float]] | None = None) -> HighsResult:
    """Solve `model` (milp.Model); `incumbent` = (columns, values) of a known feasible point (its integer
    columns; HiGHS completes the continuous ones)."""
    import highspy
    from scipy.sparse import csc_array

    t0 = time.perf_counter()
    n, rows = len(model.c), len(model.rlb)
    A = csc_array((model.vals, (model.ri, model.ci)), shape=(rows, n))
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, rows
    lp.col_cost_ = np.asarray(model.c, dtype=float)
    lp.col_lower_ = np.asarray(model.lb, dtype=float)
    lp.col_upper_ = np.asarray(model.ub, dtype=float)
    lp.row_lower_ = np.asarray(model.rlb, dtype=float)
    lp.row_upper_ = np.asarray(model.rub, dtype=float)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = A.indptr
    lp.a_matrix_.index_ = A.indices
    lp.a_matrix_.value_ = A.data
    if integer:
        kinds = (highspy.HighsVarType.kContinuous, highspy.HighsVarType.kInteger)
        lp.integrality_ = [kinds[v] for v in model.integ]
    h = _quiet_highs(highspy)
    h.setOptionValue("time_limit", float(max(time_limit_s, 1e-3)))
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    h.passModel(lp)
    if integer and incumbent:
        idx = np.asarray(incumbent[0], dtype=np.int32)
        h.setSolution(len(idx), idx, np.asarray(incumbent[1], dtype=float))
    h.run()
    st = h.getModelStatus()
    info = h.getInfo()
    secs = time.perf_counter() - t0
    has_x = info.primal_solution_status == 2  # kSolutionStatusFeasible
    names = {highspy.HighsModelStatus.kOptimal: "optimal", highspy.HighsModelStatus.kInfeasible: "infeasible",
             highspy.HighsModelStatus.kTimeLimit: "time limit"}
    status = names.get(st, h.modelStatusToString(st))
    if st == highspy.HighsModelStatus.kUnboundedOrInfeasible:
        status = "infeasible"
    x = np.asarray(h.getSolution().col_value, dtype=float) if has_x else None
    obj = float(info.objective_function_value) if has_x else INF
    if x is not None and incumbent and abs(float(lp.col_cost_ @ x) - obj) > 1e-6 * max(1.0, abs(obj)):
        # HiGHS can report a better objective than the point it returns after a sparse start (seen when the
        # start's completion fails): solve again from scratch rather than trust a stale point
        return run(model, integer, max(time_limit_s - secs, 1e-3), mip_rel_gap)
    bound = float(info.mip_dual_bound) if integer else obj
    return HighsResult(status, x, obj, bound, secs)
