"""Workload kinds (``llm``, ``gemm``, ``membw``) and the model code."""
