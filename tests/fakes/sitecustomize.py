"""Installs fake vendor packages at interpreter start when ``ACCELBENCH_FAKE_VENDORS`` names them.

Only active with this folder on PYTHONPATH (the tests put it there for child processes).
"""

import os

if os.environ.get("ACCELBENCH_FAKE_VENDORS"):
    import fake_vendors

    fake_vendors.install_from_env()
