"""The ``musa`` backend: Moore Threads GPUs through torch_musa (research/vendor-apis.md section 3)."""

from __future__ import annotations

from typing import Any

from backends.vendor import VendorTorchBackend


class MUSABackend(VendorTorchBackend):
    name = "musa"
    device_type = "musa"
    device_label = "GPU"
    vendor_module = "torch_musa"
    install_hint = ("pip install the torch and torch_musa wheels of one release from "
                    "github.com/MooreThreads/torch_musa/releases, with the MUSA SDK installed")
    environment_hint = "install the MUSA SDK (MUSA_HOME=/usr/local/musa) and put its lib folder on LD_LIBRARY_PATH"
    visible_devices_env = "MUSA_VISIBLE_DEVICES"
    toolkit_name = "musa_toolkit"
    toolkit_files = tuple(f"{root}/{name}" for name in ("version.json", "version.txt")  # musa_toolkits.version
                          for root in ("$MUSA_HOME", "/usr/local/musa"))
    smi_tool = "mthreads-gmi"  # header "mthreads-gmi:2.2.0   Driver Version:3.3.2-server"
    driver_pattern = r"Driver Version\s*:?\s*([^\s|]+)"
    compile_backend = "inductor"  # torch_musa registers inductor for "musa" (torch_musa/_inductor)
    collective_backend = "mccl"
    priority = 20

    def bf16_supported(self, device_module: Any) -> bool:
        # Native bf16 needs capability >= (2, 2) (S4000); torch.musa.is_bf16_supported() defaults to
        # including_emulation=True and may say yes on an S80 (torch_musa/core/device.py).
        return tuple(device_module.get_device_capability(self.index)) >= (2, 2)
