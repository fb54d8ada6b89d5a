"""Summary statistics for one metric's samples.

The median's 95% confidence interval is the distribution-free order-statistic interval (the
binomial method, as in Conover's *Practical Nonparametric Statistics*): the widest ranks ``[j, k]``
with ``P(j <= X < k) >= 0.95`` for ``X ~ Binomial(n, 1/2)``. With fewer than 6 samples no such
interval exists and ``[min, max]`` is reported (coverage ``1 - 2**(1-n)``). Outliers are counted
with Tukey's fences (outside ``[Q1 - 1.5 IQR, Q3 + 1.5 IQR]``).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

CI_METHOD = "median, order-statistic (binomial) 95% interval"


def median_ci95(sorted_values: Sequence[float]) -> tuple[float, float]:
    """Distribution-free 95% confidence interval of the median of sorted values."""
    n = len(sorted_values)
    if n < 6:
        return float(sorted_values[0]), float(sorted_values[-1])
    # Largest j (0-based lower rank) with P(X < j+1) <= 0.025 for X ~ Binomial(n, 1/2).
    cdf, j = 0.0, 0
    for i in range(n + 1):
        cdf += math.comb(n, i) / 2.0**n
        if cdf > 0.025:
            j = i
            break
    lo_rank = max(j - 1, 0)  # 0-based index of the j-th order statistic
    hi_rank = min(n - j, n - 1)
    return float(sorted_values[lo_rank]), float(sorted_values[hi_rank])


def tukey_outliers(values: np.ndarray) -> int:
    """Number of values outside Tukey's fences (1.5 IQR beyond the quartiles)."""
    if values.size < 4:
        return 0
    q1, q3 = np.percentile(values, [25, 75])
    iqr = q3 - q1
    return int(np.count_nonzero((values < q1 - 1.5 * iqr) | (values > q3 + 1.5 * iqr)))


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
        "cv": std / mean if mean else 0.0,
        "outliers": tukey_outliers(arr),
    }
