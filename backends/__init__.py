"""Backends, one module each; registered in the ``accelbench.backends`` entry-point group."""
