"""accelbench harness: plans, the runner, measurement, statistics, results, scoring and the CLI."""

__version__ = "0.1.0"
