"""The ``cambricon`` backend: Cambricon MLUs through torch_mlu on Neuware (research/vendor-apis.md section 2)."""

from __future__ import annotations

from typing import Any

from backends.vendor import VendorTorchBackend


class CambriconBackend(VendorTorchBackend):
    name = "cambricon"
    device_type = "mlu"
    device_label = "MLU"
    vendor_module = "torch_mlu"  # no torch autoload entry point in r2.4: imported explicitly
    install_hint = ("pip install Cambricon's torch_mlu-<ver>+torch{torch} wheel on the CPU wheel of torch {torch}, "
                    "with CNToolkit/Neuware installed")
    environment_hint = ("export NEUWARE_HOME=/usr/local/neuware PATH=$NEUWARE_HOME/bin:$PATH "
                        "LD_LIBRARY_PATH=$NEUWARE_HOME/lib64:$LD_LIBRARY_PATH")
    # --device-ids sets MLU_VISIBLE_DEVICES, but torch_mlu reads CN_VISIBLE_DEVICES first and falls
    # back to CUDA_VISIBLE_DEVICES (torch_mlu/mlu/__init__.py _parse_visible_devices).
    visible_devices_env = "MLU_VISIBLE_DEVICES"
    visible_devices_precedence = ("CN_VISIBLE_DEVICES", "MLU_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES")
    toolkit_name = "neuware"
    toolkit_files = ("$NEUWARE_HOME/version.txt", "/usr/local/neuware/version.txt")  # "Neuware Version 3.9.0"
    smi_tool = "cnmon"  # header "... Driver v5.10.22" (torch_mlu collect_env regex)
    driver_pattern = r"Driver\s*:?\s*(v?\d+\.\d+\.\d+)"
    compile_backend = None
    no_compile_reason = "torch_mlu registers no torch.compile (dynamo) backend in its public releases"
    collective_backend = "cncl"
    priority = 20

    def bf16_supported(self, device_module: Any) -> bool:
        # torch.mlu.is_bf16_supported(): get_device_properties().major >= 5 (MLU5xx yes, MLU370 no).
        return device_module.get_device_properties(self.index).major >= 5
