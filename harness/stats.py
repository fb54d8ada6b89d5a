"""Summary statistics for one metric's samples.

The median's 95% confidence interval is the distribution-free order-statistic interval (the
binomial method, as in Conover's *Practical Nonparametric Statistics*): with ``X ~ Binomial(n, 1/2)``
and ``j`` the largest rank with ``P(X < j) <= 0.025``, the interval is ``[x_(j), x_(n-j+1)]``
(1-based order statistics), coverage ``1 - 2 P(X < j) >= 95%``. ``j`` is computed exactly (integer
arithmetic) up to ``EXACT_CI_MAX_N`` samples and by the normal approximation
``j = floor(n/2 - 1.96 sqrt(n)/2)`` above. With fewer than 6 samples no such interval exists and
``[min, max]`` is reported (coverage ``1 - 2**(1-n)``: 50% for 2 samples, 93.75% for 5).

CV is the sample standard deviation (n - 1) over the mean. Outliers are counted with Tukey's
fences: values outside ``[Q1 - 1.5 IQR, Q3 + 1.5 IQR]``, quartiles by linear interpolation
(``numpy.percentile``'s default); fewer than 4 samples have no outliers.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

CI_METHOD = (
    "95% CI of the median: distribution-free order-statistic (binomial) interval "
    "[x_(j), x_(n-j+1)]; [min, max] when n < 6"
)
OUTLIER_RULE = "Tukey's fences: outside [Q1 - 1.5 IQR, Q3 + 1.5 IQR]"
EXACT_CI_MAX_N = 5000
Z95 = 1.959963984540054
#: pyperf-style repetition check: the 95% CI of the mean should be at most this wide (fraction of
#: the mean, full width; 0.05 = +-2.5%).
TARGET_CI_WIDTH = 0.05


def median_ci_rank(n: int) -> int:
    """``j`` (1-based) of the median's 95% interval ``[x_(j), x_(n-j+1)]``; 1 when n < 6 (min, max)."""
    if n < 6:
        return 1
    if n > EXACT_CI_MAX_N:
        return max(1, math.floor(n / 2 - Z95 * math.sqrt(n) / 2))
    total = 1 << n  # 2**n, exact
    cum, comb = 0, 1  # P(X <= i) * 2**n and C(n, i)
    for i in range(n + 1):
        cum += comb
        if cum * 40 > total:  # P(X <= i) > 0.025, so P(X < i) <= 0.025 is the last that holds
            return max(i, 1)
        comb = comb * (n - i) // (i + 1)
    return 1  # unreachable


def median_ci95(sorted_values: Sequence[float]) -> tuple[float, float]:
    """Distribution-free 95% confidence interval of the median of ``sorted_values`` (ascending)."""
    n = len(sorted_values)
    if n == 0:
        raise ValueError("no samples")
    j = median_ci_rank(n)
    return float(sorted_values[j - 1]), float(sorted_values[n - j])


def ci_coverage(n: int) -> float:
    """Exact coverage of the interval :func:`median_ci95` reports for ``n`` samples."""
    j = median_ci_rank(n)
    if n > EXACT_CI_MAX_N:
        return 0.95
    below = sum(math.comb(n, i) for i in range(j))
    return 1.0 - 2 * below / (1 << n)  # exact integer ratio, no float overflow


def tukey_outliers(values: Sequence[float] | np.ndarray) -> int:
    """Number of values outside Tukey's fences (1.5 IQR beyond the quartiles)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < 4:
        return 0
    q1, q3 = np.percentile(values, [25, 75])
    iqr = q3 - q1
    return int(np.count_nonzero((values < q1 - 1.5 * iqr) | (values > q3 + 1.5 * iqr)))


def required_repetitions(cv: float, width: float = TARGET_CI_WIDTH) -> int:
    """pyperf's rule ``ceil(4 Z^2 CV^2 / W^2)``: runs needed for a 95% CI of the mean ``width`` wide."""
    if cv <= 0:
        return 1
    return max(1, math.ceil(4 * Z95**2 * cv**2 / width**2 - 1e-9))


def summarize(values: Sequence[float], unit: str = "") -> dict:
    """n, mean, median, std (n-1), min, max, p50, p90, p99, ci95, cv, outliers of ``values``."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("no samples to summarize")
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    p50, p90, p99 = (float(x) for x in np.percentile(arr, [50, 90, 99]))
    return {
        "unit": unit,
        "n": int(arr.size),
        "mean": mean,
        "median": float(np.median(arr)),
        "std": std,
        "min": float(arr.min()),
        "max": float(arr.max()),
        "p50": p50,
        "p90": p90,
        "p99": p99,
        "ci95": list(median_ci95(np.sort(arr))),
        "cv": abs(std / mean) if mean else 0.0,
        "outliers": tukey_outliers(arr),
    }
