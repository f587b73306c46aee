"""Queueing at a stage: p50/p95 sojourn of an M/G/c station (Erlang C, Allen-Cunneen and Cosmetatos).

Model. Requests reach a stage as a Poisson stream of rate lam = qps * visits executions per second.
Each of the c = r replicas serves at mu = throughput executions per second, service times having squared
coefficient of variation cs2 (0: deterministic); an execution waits in a FIFO queue for a free replica.

Waiting time. For M/M/c, P(Wq > t) = C(c, a) * exp(-(c*mu - lam) * t), with C the Erlang C probability
of waiting and a = lam / mu. Allen-Cunneen scales G/G/c waiting by f = (1 + cs2) / 2 (exact for the M/D/1
mean). For several servers that alone is low (11-28 % on the M/D/c p95 for 3 to 16 servers), because a
deterministic multi-server queue waits longer than half an M/M/c one: Cosmetatos's factor
k = 1 + (1 - cs2)(1 - rho)(c - 1)(sqrt(4 + 5c) - 2) / (16 rho c) corrects the mean, and applying it to
the tail's scale as well (k^2, fitted against simulation) keeps the p95 from being low:

    P(Wq > t) ~= C(c, a) * exp(-t / theta),  theta = f * k^2 / (c*mu - lam)
    Wq_q = max(0, theta * ln(C / (1 - q)))

Against FIFO M/G/c simulation (tests/test_placement_queueing.py: c = 1..32, rho 0.3..0.85, cs 0..0.6)
the p95 wait is -8 % to +23 % of the simulated one; the low cases are waits under half a service time, so
the sojourn p95 (wait + service) is within 1 % there.

Moments of the same wait (0 with probability 1 - C, else exponential of mean theta): mean C theta, variance
C (2 - C) theta^2; the end-to-end p95 estimate sums them along a path (graph.path_estimate).

One request's executions that share a queue are not independent Poisson arrivals: a loop's passes come back to
it (turn_moments: mean value analysis of the returning work, AR(1) covariance of the waits, a gamma tail of their
sum) and a map's elements arrive together (batch_moments: M^X/G/c, Allen-Cunneen with the batch stream's ca2).
The end-to-end estimate uses both; the per-stage quantiles below (the solver's bound) do not.

Sojourn quantile of one execution: Wq_q + latency_s. A stage's per-request latency is visits times
that (conservative: the q-quantile of a sum of iid sojourns is below the sum of their q-quantiles).
"""

from __future__ import annotations

from functools import lru_cache
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def erlang_c(c: int, a: float) -> float:
    """Probability an arrival waits in M/M/c with offered load a = lam / mu (< c); 1.0 when unstable."""
    if a <= 0:
        return 0.0
    if a >= c:
        return 1.0
    b = 1.0
    for k in range(1, c + 1):  # Erlang B recursion, numerically stable for large c
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1.0 - rho * (1.0 - b))


def spread_factor(c: FloatArray | float, rho: FloatArray | float, cs2: FloatArray | float = 0.0,
                  ca2: FloatArray | float = 1.0) -> FloatArray:
    """f * k^2 of the module docstring: Allen-Cunneen's (ca2 + cs2) / 2 times Cosmetatos's factor squared.

    ca2 is the arrival stream's squared coefficient of variation: 1 for Poisson; for executions arriving in
    batches of X at once (a map's elements), a compound Poisson stream, E[X^2] / E[X] (its index of dispersion,
    as Whitt's QNA takes it). With it f gives the first of a batch's wait: for M^X/G/1 with batches of K,
    (K + cs2) / 2 x rho s / (1 - rho) is exactly the workload a batch finds, lam_b E[(K s)^2] / (2 (1 - rho))."""
    c, rho, cs2 = np.asarray(c, float), np.asarray(rho, float), np.asarray(cs2, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        cosmetatos = np.where(rho > 0, (1 - rho) * (c - 1) * (np.sqrt(4 + 5 * c) - 2) / (16 * rho * c), 0.0)
    k = 1.0 + np.maximum(0.0, 1.0 - cs2) * cosmetatos
    return np.asarray((np.asarray(ca2, float) + cs2) / 2.0 * k * k)


def wait_quantile(q: float, c: int, lam: float, mu: float, cs2: float = 0.0, ca2: float = 1.0) -> float:
    """q-quantile of the waiting time in M/G/c (approximation in the module docstring), seconds."""
    if lam <= 0:
        return 0.0
    if lam >= c * mu:
        return float("inf")
    p_wait = erlang_c(c, lam / mu)
    tail = 1.0 - q
    if p_wait <= tail:
        return 0.0
    scale = float(spread_factor(c, lam / (c * mu), cs2, ca2)) / (c * mu - lam)
    return float(scale * np.log(p_wait / tail))


def wait_moments(c: int, lam: float, mu: float, cs2: float = 0.0, ca2: float = 1.0) -> tuple[float, float]:
    """(mean, variance) of the waiting time in M/G/c under the tail of the module docstring, seconds."""
    if lam <= 0:
        return 0.0, 0.0
    if lam >= c * mu:
        return float("inf"), float("inf")
    p_wait = erlang_c(c, lam / mu)
    theta = float(spread_factor(c, lam / (c * mu), cs2, ca2)) / (c * mu - lam)
    return p_wait * theta, p_wait * (2.0 - p_wait) * theta * theta


def min_replicas(lam: FloatArray, mu: FloatArray, max_utilization: float) -> IntArray:
    """Fewest replicas keeping utilization lam / (r mu) at or under the cap (at least 1)."""
    r = np.ceil(lam / (mu * max_utilization) - 1e-9)
    return np.maximum(r, 1).astype(np.int64)


def wait_quantiles_table(lam: FloatArray, mu: FloatArray, r0: IntArray, extra: int,
                         quantiles: tuple[float, ...], cs2: FloatArray | None = None
                         ) -> tuple[IntArray, list[FloatArray]]:
    """Waiting-time quantiles for r = r0 .. r0 + extra replicas of every candidate, vectorized.

    `cs2` is each candidate's squared coefficient of variation of service time (default 0, deterministic).
    Returns (r, [wq for each quantile]), each of shape (n, extra + 1).
    """
    n = lam.shape[0]
    steps = extra + 1
    r = r0[:, None] + np.arange(steps, dtype=np.int64)[None, :]
    a = lam / mu
    top = int(r.max()) if n else 0
    outs = [np.zeros((n, steps)) for _ in quantiles]
    if n == 0:
        return r, outs
    # Erlang B by recursion in k, each candidate only up to its own largest r (sorted by it)
    by_top = np.argsort(r[:, -1], kind="stable")
    tops = r[by_top, -1]
    a_s, lam_s, mu_s, r0_s = a[by_top], lam[by_top], mu[by_top], r0[by_top]
    cs2_s = (np.zeros(n) if cs2 is None else np.asarray(cs2, float))[by_top]
    b = np.ones(n)
    lo = 0
    for k in range(1, top + 1):
        while lo < n and tops[lo] < k:
            lo += 1
        bs = b[lo:]
        bs[:] = a_s[lo:] * bs / (k + a_s[lo:] * bs)
        col = k - r0_s[lo:]
        on = np.flatnonzero(col >= 0)
        if on.size == 0:
            continue
        idx = on + lo
        kk = float(k)
        aa, bb = a_s[idx], b[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            p_wait = np.where(aa > 0, bb / (1.0 - aa / kk * (1.0 - bb)), 0.0)
            slack = (kk * mu_s[idx] - lam_s[idx]) / spread_factor(kk, aa / kk, cs2_s[idx])
            for out, q in zip(outs, quantiles, strict=True):
                tail = 1.0 - q
                w = np.where(p_wait > tail, np.log(np.maximum(p_wait, tail) / tail) / slack, 0.0)
                out[by_top[idx], col[on]] = np.where(lam_s[idx] > 0, w, 0.0)
    return r, outs


def relaxation_s(c: int, lam: float, mu: float) -> float:
    """Seconds over which an M/G/c queue forgets its state: 1 / (sqrt(c mu) - sqrt(lam))^2, Morse's relaxation
    time of M/M/1 (1 / (mu (1 - sqrt(rho))^2), Morse 1955) with the c servers pooled; inf when unstable."""
    gap = np.sqrt(c * mu) - np.sqrt(max(lam, 0.0))
    return float("inf") if gap <= 0 else float(1.0 / (gap * gap))


def turn_correlation(c: int, lam: float, mu: float, turns: float, gap_s: float) -> float:
    """Correlation of the waits of one request's successive executions at a FIFO queue it visits in turn (a
    loop's passes), `turns` executions per request on average, `gap_s` seconds between leaving and coming back.

    The work ahead of a request that comes back is the work of the executions that were ahead of it last time and
    come round again (a share 1 - 1/turns of executions are not their request's last) plus the new requests'
    that arrived while it waited and was served (rho / turns of that time at one server): the next wait rises by
    1 - (1 - rho) / turns for each second of this one (0.86 for 2.6 turns at utilization 0.63, where independent
    waits read 0). Between the visits the queue relaxes towards its mean: the slope decays as exp(-gap / T), T
    the relaxation time (relaxation_s)."""
    if lam <= 0 or turns <= 1.0:
        return 0.0
    rho = min(lam / (c * mu), 1.0)
    slope = 1.0 - (1.0 - rho) / turns
    return float(slope * np.exp(-max(gap_s, 0.0) / relaxation_s(c, lam, mu)))


def turn_moments(c: int, lam: float, mu: float, service_s: float, cs2: float, turns: float, n: float,
                 gap_s: float, q: float = 0.95) -> tuple[float, float, float]:
    """(mean, variance, q-quantile excess over the mean) of one request's n executions in turn at an M/G/c FIFO
    queue it comes back to (a loop's passes), `turns` executions per request on average, `gap_s` seconds between
    leaving and coming back.

    Mean (mean value analysis). An arrival from outside finds, by PASTA and Little's law, the queue's mean
    content: w_1 = (1 - rho) W0 + rho Wbar, W0 the Poisson stream's mean wait (wait_moments) and Wbar the mean
    wait over all executions (exact for M/G/1: the residual service plus rho Wbar of queued work; W0 when nothing
    comes back). One that comes back finds the executions that were ahead of it and come round again and the
    work that arrived while it waited and was served, less what the other c - 1 servers did meanwhile:
    w_(j+1) = s w_j + (rho / turns - (1 - 1/c)) service, s = 1 - (1 - rho) / turns (turn_correlation's slope),
    relaxing towards w_1 as exp(-gap / T) between visits, and never below W0. A loop's visits wait longer than
    independent Poisson arrivals: a tool at utilization 0.63 visited 2.6 times waits 50 ms on average in
    simulation, 36 ms by the Poisson formula, 45 ms here (over three passes).
    Variance. Each wait is 0 or exponential (the M/G/c tail) scaled to its mean w_j; two waits k passes apart
    have correlation r^k (turn_correlation), so Var(sum) = sum Var_j + 2 sum Cov_ij; the services add n cs2 s^2.
    Tail. Strongly correlated exponential waits add up to a skewed sum (the same long queue on every pass), not a
    normal one: its q quantile is read from the gamma distribution of the waits' mean and variance (moment
    matching, as for sums of correlated exponentials), the services' spread added in quadrature. Outside a loop
    the excess is 0 (the caller keeps one execution's).
    """
    w0, v0 = wait_moments(c, lam, mu, cs2)
    whole = int(np.ceil(n - 1e-9))
    if lam <= 0 or turns <= 1.0 or whole <= 1 or not np.isfinite(w0):
        return n * (w0 + service_s), n * (v0 + cs2 * service_s ** 2), 0.0
    rho = min(lam / (c * mu), 1.0)
    r = turn_correlation(c, lam, mu, turns, gap_s)
    keep = float(np.exp(-max(gap_s, 0.0) / relaxation_s(c, lam, mu)))
    step = (rho / turns - (1.0 - 1.0 / c)) * service_s
    count = max(whole, int(np.ceil(turns)))
    weights = np.minimum(1.0, np.maximum(0.0, turns - np.arange(count)))   # executions that reach pass j
    w1 = w0
    for _ in range(200):   # the fixed point of w_1 = (1 - rho) W0 + rho Wbar: a contraction (rho < 1)
        w = [w1]
        for _ in range(count - 1):
            w.append(max(w0, w1 + keep * ((1.0 - (1.0 - rho) / turns) * w[-1] + step - w1)))
        nxt = (1.0 - rho) * w0 + rho * float(np.dot(weights, w) / weights.sum())
        if abs(nxt - w1) <= 1e-12 + 1e-9 * w1:
            break
        w1 = nxt
    p_wait = erlang_c(c, lam / mu)
    ws = np.asarray(w[:whole], dtype=float)
    frac = np.ones(whole)
    frac[-1] = n - (whole - 1)          # a fractional last execution counts in proportion
    sd = np.sqrt(p_wait * (2.0 - p_wait)) * ws / max(p_wait, 1e-12) * frac
    lags = np.abs(np.subtract.outer(np.arange(whole), np.arange(whole)))
    var = float(sd @ (r ** lags) @ sd)
    mean = float(np.dot(frac, ws))
    served = n * cs2 * service_s ** 2
    return mean + n * service_s, var + served, float(np.hypot(gamma_excess(mean, var, q), _z(q) * np.sqrt(served)))


def batch_moments(c: int, lam: float, mu: float, service_s: float, cs2: float, batch: float, turns: float,
                  slowest: float, q: float = 0.95) -> tuple[float, float, float]:
    """(mean, variance, q-quantile excess over the mean) of one request's `batch` executions arriving at once at
    an M/G/c FIFO queue (a map's elements), `turns` of them in turn on its replicas (ceil(batch / c)), and the
    request waits for the last (M^X/G/c). They wait once, together, for the work a batch finds ahead
    (wait_moments with the batch stream's ca2 = batch), then run `turns` services in turn: the last element waits
    for turns - 1 services of its own siblings. `slowest` scales the services' spread: the slowest of the
    elements (evaluate.map_tail). Independent elements each waiting the Poisson wait read a map of 10 tool calls
    on 3 replicas at utilization 0.8 at 25 ms of mean wait; simulated, an element waits 246 ms."""
    wm, wv = wait_moments(c, lam, mu, cs2, max(batch, 1.0))
    served = turns * cs2 * service_s ** 2 * slowest * slowest
    excess = wait_quantile(q, c, lam, mu, cs2, max(batch, 1.0)) - wm if np.isfinite(wm) else float("inf")
    return wm + turns * service_s, wv + served, float(np.hypot(max(excess, 0.0), _z(q) * np.sqrt(served)))


def _z(q: float) -> float:
    return NormalDist().inv_cdf(q)


def gamma_excess(mean: float, var: float, q: float = 0.95) -> float:
    """q quantile minus mean of the gamma distribution with this mean and variance (0 when either is 0)."""
    if mean <= 0 or var <= 0:
        return 0.0
    from scipy.stats import gamma

    return float(gamma.ppf(q, mean * mean / var, scale=var / mean)) - mean


@lru_cache(maxsize=256)
def slowest(n: float) -> tuple[float, float]:
    """(mean, sd) of the largest of n independent standard normals (n >= 1, fractional n as the CDF's power):
    (0, 1) for one; (1.03, 0.70) for 4; (2.04, 0.48) for 30."""
    if n <= 1.0:
        return 0.0, 1.0
    x = np.linspace(-8.0, 8.0, 4001)
    cdf = np.array([NormalDist().cdf(v) for v in x])
    pdf = n * np.exp(-x * x / 2.0) / np.sqrt(2.0 * np.pi) * cdf ** (n - 1.0)
    w = pdf / pdf.sum()
    mean = float(np.dot(w, x))
    return mean, float(np.sqrt(np.dot(w, (x - mean) ** 2)))
