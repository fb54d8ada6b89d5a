"""The ``ascend`` backend: Huawei Ascend NPUs through torch_npu on CANN (research/vendor-apis.md section 1)."""

from __future__ import annotations

import re
from typing import Any

from backends.vendor import VendorTorchBackend, base_version

# torch.npu.is_bf16_supported() is GetSocVersion() >= Ascend910B1 (Ascend/pytorch
# torch_npu/csrc/core/npu/NpuVariables.cpp, enum in NpuVariables.h): 910B1-B4 (incl. B2C, B4-1),
# 310B1-B4 and 910C1-C4 sort after it, as do the A3 class Ascend910_93xx and Ascend950*;
# 910PremiumA/ProA/A/ProB, the bare "Ascend910B" (enum 104) and 310P* do not.
BF16_SOCS = re.compile(r"Ascend(910B\d|310B\d|910C\d|910_9\d{3}|950)")


class AscendBackend(VendorTorchBackend):
    name = "ascend"
    device_type = "npu"
    device_label = "NPU"
    vendor_module = "torch_npu"
    # torch-npu X.Y.Z(.postN) is built for torch X.Y.Z (Ascend/pytorch COMPATIBILITY.en.md).
    install_hint = "pip install 'torch-npu=={torch}.*' on the CPU wheel of torch {torch}, with the CANN toolkit installed"
    environment_hint = ("source /usr/local/Ascend/ascend-toolkit/set_env.sh (newer CANN: "
                        "/usr/local/Ascend/cann/set_env.sh) so that the CANN libraries are found")
    visible_devices_env = "ASCEND_RT_VISIBLE_DEVICES"
    toolkit_name = "cann"
    toolkit_files = tuple(
        f"{root}/*-linux/ascend_toolkit_install.info"  # line "version=8.0.RC2"
        for root in ("$ASCEND_TOOLKIT_HOME", "$ASCEND_HOME_PATH", "/usr/local/Ascend/ascend-toolkit/latest",
                     "/usr/local/Ascend/cann")
    )
    smi_tool = "npu-smi"  # first line: "| npu-smi 24.1.rc2   Version: 24.1.rc2 |"
    driver_args = ("info",)
    driver_pattern = r"Version:\s*([0-9][\w.\-]*)"
    # torch_npu >= 2.9 registers dynamo backends npu, npugraph_ex, npugraphs (setup.py entry points);
    # npugraph_ex captures graphs like CUDA's reduce-overhead. Older releases only register "npu"
    # (the TorchAir GE backend, torch_npu/dynamo/__init__.py), used as the fallback.
    compile_backend = "npugraph_ex"
    compile_fallbacks = ("npu",)
    collective_backend = "hccl"
    priority = 20

    def bf16_supported(self, device_module: Any) -> bool:
        # get_device_name() returns the SoC name (aclrtGetSocName) whatever the index.
        return bool(BF16_SOCS.match(str(device_module.get_device_name(self.index))))

    def visible_ids_problem(self, value: str) -> str | None:
        # torch_npu parses digits and commas up to the first other character and sees no device
        # unless the ids are strictly ascending (torch_npu/npu/__init__.py device_count).
        ids = [int(x) for x in re.match(r"[\d,]*", value).group().split(",") if x]
        if not ids:
            return "has no device id and hides every NPU"
        if any(b <= a for a, b in zip(ids, ids[1:])):
            return "is not strictly ascending, so torch_npu sees no NPU (write e.g. '0,1')"
        return None

    def required_torch(self, package_version: str | None, message: str = "") -> str | None:
        # torch_npu X.Y.Z(.postN) is built for torch X.Y.Z (Ascend/pytorch COMPATIBILITY.en.md).
        found = super().required_torch(package_version, message)
        return found or (base_version(package_version) if package_version else None)
