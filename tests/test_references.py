"""references.csv and devices.toml: packaged data, validation errors, device-name mapping."""

from __future__ import annotations

import pytest

from harness.devices import PRECISIONS, load_devices
from harness.errors import UsageError
from harness.references import COLUMNS, load_references, parse_tags

HEADER = ",".join(COLUMNS)
GOOD = "NVIDIA H200 SXM,NVIDIA,mem_bandwidth_gbps,4800,GB/s,,,,https://example.com/h200,vendor,"


# ---- packaged references.csv ---------------------------------------------------------------

def test_packaged_references_load(refs):
    assert list(refs.columns) == COLUMNS
    assert len(refs) == 275
    assert refs["value"].dtype == float
    assert (refs["source"].str.len() > 0).all()


def test_seed_claims_are_included(refs):
    seeds = refs[refs["source_kind"] == "seed"]
    assert len(seeds) == 42
    assert set(seeds["source"]) == {"001_02343ddd2f8ef655.txt", "002_26facd00e67c7295.txt",
                                   "003_4ecf248bfee2f514.txt"}
    h100_seed = seeds[(seeds["device"] == "NVIDIA H100 SXM") & (seeds["metric"] == "peak_tflops")]
    assert list(h100_seed["value"]) == [2000.0] and list(h100_seed["sparsity"]) == ["sparse"]


def test_conflicting_claims_stay_separate_rows(refs):
    b = refs[refs["device"] == "Huawei Ascend 910B"]
    assert sorted(b[b["metric"] == "mem_bandwidth_gbps"]["value"]) == [400, 768, 1200, 1600]
    assert sorted(b[(b["metric"] == "peak_tflops") & (b["precision"] == "FP16")]["value"]) == [256, 320, 320]
    s4000 = refs[(refs["device"] == "Moore Threads MTT S4000") & (refs["precision"] == "FP16")]
    assert sorted(s4000["value"]) == [98, 100]
    h200_fp8 = refs[(refs["device"] == "NVIDIA H200 SXM") & (refs["metric"] == "peak_tflops")
                    & (refs["precision"] == "FP8")]
    assert sorted(zip(h200_fp8["value"], h200_fp8["sparsity"])) == [
        (1978.9, "dense"), (3940.0, "dense"), (3958.0, "sparse")]


def test_every_tag_parses_and_llm_claims_are_tagged_only_when_identifiable(refs):
    tagged = refs[refs["conditions"].str.startswith("[")]
    for cond in tagged["conditions"]:
        assert parse_tags(cond)
    trt = refs[refs["conditions"].str.startswith("TensorRT-LLM max-throughput")]
    assert len(trt) == 1  # 'llama_70b' does not say which Llama: left untagged


# ---- validation -----------------------------------------------------------------------------

@pytest.mark.parametrize("bad_row, message", [
    ("NVIDIA H200 SXM,NVIDIA,peak_flops,989,TFLOPS,BF16,dense,,src,vendor,",
     "bad.csv row 3: unknown metric 'peak_flops'"),
    ("NVIDIA H200 SXM,NVIDIA,mem_bandwidth_gbps,4800,TB/s,,,,src,vendor,",
     "bad.csv row 3: bad unit 'TB/s' for metric 'mem_bandwidth_gbps'"),
    ("NVIDIA H200 SXM,NVIDIA,peak_tflops,~989,TFLOPS,BF16,dense,,src,vendor,",
     "bad.csv row 3: value '~989' is not a number"),
    ("NVIDIA H200 SXM,NVIDIA,peak_tflops,989,TFLOPS,BF16,dense,,,vendor,",
     "bad.csv row 3: missing source"),
    ("NVIDIA H200 SXM,NVIDIA,peak_tflops,989,TFLOPS,BF16,2:4,,src,vendor,",
     "bad.csv row 3: unknown sparsity '2:4'"),
    ("NVIDIA H200 SXM,NVIDIA,peak_tflops,989,TFLOPS,BF16,dense,,src,blog,",
     "bad.csv row 3: unknown source_kind 'blog'"),
    ("NVIDIA H200 SXM,NVIDIA,llm_tokens_per_s,3000,tokens/s,FP8,,[modle=llama-2-70b] x,src,mlperf,",
     "bad.csv row 3: conditions: unknown tag 'modle'"),
    ("NVIDIA H200 SXM,NVIDIA,llm_relative_throughput,2,tokens/s,,,,src,vendor,",
     "bad.csv row 3: bad unit 'tokens/s' for metric 'llm_relative_throughput'"),
])
def test_validation_errors_name_file_and_row(tmp_path, bad_row, message):
    path = tmp_path / "bad.csv"
    path.write_text(f"{HEADER}\n{GOOD}\n{bad_row}\n", encoding="utf-8")
    with pytest.raises(UsageError) as err:
        load_references(path)
    assert str(err.value) == message


def test_missing_column_and_missing_file(tmp_path):
    path = tmp_path / "refs.csv"
    path.write_text(HEADER.replace(",source,", ",") + "\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"^refs.csv: missing column\(s\) source$"):
        load_references(path)
    with pytest.raises(UsageError, match="cannot read references file"):
        load_references(tmp_path / "nope.csv")


def test_valid_custom_file(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text(f"{HEADER}\n{GOOD}\n", encoding="utf-8")
    frame = load_references(path)
    assert frame.loc[0, "value"] == 4800.0 and frame.loc[0, "precision"] == ""


def test_parse_tags():
    assert parse_tags("[model=llama-2-70b; phase=output] MLPerf") == {"model": "llama-2-70b", "phase": "output"}
    assert parse_tags("no tag here") == {}
    for bad in ("[phase=training]", "[bound=middle]", "[batch=a lot]", "[model]"):
        with pytest.raises(ValueError):
            parse_tags(bad)


# ---- devices.toml ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, reference", [
    ("NVIDIA H200", "NVIDIA H200 SXM"),
    ("NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM"),
    ("NVIDIA H100 PCIe", "NVIDIA H100 PCIe"),
    ("NVIDIA H20", "NVIDIA H20"),
    ("NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB SXM"),
    ("NVIDIA B200", "NVIDIA B200 (HGX, 1000W)"),
    ("NVIDIA L20", "NVIDIA L20"),
    ("Ascend910B3", "Huawei Ascend 910B"),
    ("Ascend910_9392", "Huawei Ascend 910C"),
    ("Ascend910_9381", "Huawei Ascend 910C"),
    ("MLU370-X8", "Cambricon MLU370-X8"),
    ("MLU590", "Cambricon MLU590"),
    ("MLU590-M9D", "Cambricon MLU590"),
    ("MTT S4000", "Moore Threads MTT S4000"),
    ("MTT S80", "Moore Threads MTT S80"),
    ("MTT S5000", "Moore Threads MTT S5000"),
    ("Intel(R) Xeon(R) Platinum 8480+", "Intel Xeon Platinum 8480+"),
    ("Intel(R)  Xeon(R) Platinum 8480+ ", "Intel Xeon Platinum 8480+"),
    ("AMD EPYC 9654 96-Core Processor", "AMD EPYC 9654"),
])
def test_device_mapping(devices, name, reference):
    assert devices.match(name).reference == reference


@pytest.mark.parametrize("name", [
    "NVIDIA H200 NVL", "MLU370", "Ascend910B4", "Ascend950PR", "Intel(R) Xeon(R) Processor", "", None])
def test_unknown_devices_are_not_guessed(devices, name):
    assert devices.match(name) is None


def test_unknown_message(devices):
    assert devices.unknown_message("Foo 9") == "unknown device 'Foo 9': add it to configs/devices.toml"


def test_packaged_device_figures(devices, refs):
    labels = set(refs["device"])
    for entry in devices.entries.values():
        assert set(entry.labels) <= labels, entry.name
        assert set(entry.peak_tflops) <= set(PRECISIONS)
        assert entry.why
    h200 = devices.match("NVIDIA H200")
    assert h200.peak_tflops == {"bf16": 989.4, "fp16": 989.4, "fp8": 1978.9, "tf32": 494.7, "fp32": 67.0}
    assert h200.mem_bandwidth_gbps == 4800
    b910 = devices.match("Ascend910B3")
    assert (b910.peak_tflops, b910.mem_bandwidth_gbps) == ({"bf16": 320.0, "fp16": 320.0}, 1600)
    c910 = devices.match("Ascend910_9392")
    assert (c910.peak_tflops["bf16"], c910.mem_bandwidth_gbps, c910.reference_share) == (376.0, 1600, 0.5)
    mlu = devices.match("MLU370-X8")
    assert (mlu.peak_tflops["fp16"], mlu.mem_bandwidth_gbps) == (96.0, 614.4)
    s4000 = devices.match("MTT S4000")
    assert (s4000.peak_tflops["bf16"], s4000.mem_bandwidth_gbps) == (100.0, 768)
    assert devices.match("MLU590").mem_bandwidth_gbps is None
    assert [e.name for e in devices.by_relative_name("H20")] == ["NVIDIA H20"]


@pytest.mark.parametrize("body, message", [
    ('[devices."X"]\nreference = "R"\nbandwith = 1\n', "devices.toml: devices.'X': unknown key 'bandwith'"),
    ('[devices."X"]\nreference = 3\n', "devices.toml: devices.'X': key 'reference' must be a non-empty string"),
    ('[devices."X"]\nreference = "R"\nmem_bandwidth_gbps = "fast"\n',
     "devices.toml: devices.'X': key 'mem_bandwidth_gbps' must be a positive number"),
    ('[devices."X"]\nreference = "R"\naliases = "Y"\n',
     "devices.toml: devices.'X': key 'aliases' must be a list of strings"),
    ('[devices."X"]\nreference = "R"\n[devices."X".peak_tflops]\nint8 = 5\n',
     "devices.toml: devices.'X': unknown key 'peak_tflops.int8' (want one of bf16, fp16, fp32, tf32, fp8)"),
    ('[devices."X"]\nreference = "R"\n[devices."X".peak_tflops]\nbf16 = true\n',
     "devices.toml: devices.'X': key 'peak_tflops.bf16' must be a positive number"),
    ('[devices."X"]\nreference = "R"\nreference_share = 2\n',
     "devices.toml: devices.'X': key 'reference_share' must be a number in (0, 1]"),
    ('[devices."X"]\nreference = "R"\npatterns = ["(unclosed"]\n',
     "devices.toml: devices.'X': key 'patterns': bad regex '(unclosed'"),
    ('[device."X"]\nreference = "R"\n', "devices.toml: unknown key 'device'"),
    ('[devices."X"\n', "devices.toml: invalid TOML"),
])
def test_device_table_validation(tmp_path, body, message):
    path = tmp_path / "devices.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(UsageError) as err:
        load_devices(path)
    assert str(err.value).startswith(message)


def test_ambiguous_patterns_match_nothing(tmp_path):
    path = tmp_path / "devices.toml"
    path.write_text('[devices."A"]\nreference = "RA"\npatterns = ["Chip.*"]\n'
                    '[devices."B"]\nreference = "RB"\npatterns = ["Chip-9.*"]\n', encoding="utf-8")
    table = load_devices(path)
    assert table.match("Chip-1").reference == "RA"
    assert table.match("Chip-9x") is None
    assert table.match("A").reference == "RA"
