"""Per-repetition LLM metrics from the timer's marks (DESIGN.md "Metrics").

Marks are nanoseconds since the start of the repetition: ``marks[0] = 0`` (start), ``marks[1]`` =
first token available (prefill of the whole batch + first greedy token), ``marks[1 + i]`` = token
``i + 1`` available, so ``len(marks) == G + 1``.
"""

from __future__ import annotations

UNITS = {
    "ttft_ms": "ms",
    "itl_ms": "ms",
    "e2e_ms": "ms",
    "tpot_ms": "ms",
    "prefill_tok_s": "tok/s",
    "decode_tok_s": "tok/s",
    "decode_tok_s_per_seq": "tok/s",
    "output_tok_s": "tok/s",
    "decode_gbps": "GB/s",
    "prefill_tflops": "TFLOPS",
    "peak_mem_bytes": "B",
    "energy_j_per_token": "J/tok",
}

LOWER_IS_BETTER = frozenset({"ttft_ms", "itl_ms", "e2e_ms", "tpot_ms", "peak_mem_bytes", "energy_j_per_token"})


def llm_rep_metrics(
    marks_ns: list[int],
    batch: int,
    prompt_len: int,
    gen_len: int,
    decode_bytes_per_step: float | None = None,
    prefill_flops: float | None = None,
) -> dict[str, float | list[float]]:
    """Metrics of one repetition.

    ttft = marks[1]; e2e = marks[-1]; itl = successive differences after the first token;
    tpot = (e2e - ttft) / (G - 1); prefill_tok_s = B*P / ttft; decode_tok_s = B*(G - 1) / (e2e - ttft);
    decode_tok_s_per_seq = decode_tok_s / B; output_tok_s = B*G / e2e;
    decode_gbps = decode_bytes_per_step / tpot / 1e9; prefill_tflops = prefill_flops / ttft / 1e12.
    """
    if len(marks_ns) != gen_len + 1:
        raise ValueError(f"expected {gen_len + 1} timer marks for gen_len={gen_len}, got {len(marks_ns)}")
    ttft_s = marks_ns[1] / 1e9
    e2e_s = marks_ns[-1] / 1e9
    out: dict[str, float | list[float]] = {
        "ttft_ms": ttft_s * 1e3,
        "e2e_ms": e2e_s * 1e3,
        "prefill_tok_s": batch * prompt_len / ttft_s,
        "output_tok_s": batch * gen_len / e2e_s,
    }
    if prefill_flops:
        out["prefill_tflops"] = prefill_flops / ttft_s / 1e12
    if gen_len > 1:
        decode_s = e2e_s - ttft_s
        tpot_s = decode_s / (gen_len - 1)
        out["itl_ms"] = [(b - a) / 1e6 for a, b in zip(marks_ns[1:-1], marks_ns[2:])]
        out["tpot_ms"] = tpot_s * 1e3
        out["decode_tok_s"] = batch * (gen_len - 1) / decode_s
        out["decode_tok_s_per_seq"] = (gen_len - 1) / decode_s
        if decode_bytes_per_step:
            out["decode_gbps"] = decode_bytes_per_step / tpot_s / 1e9
    return out
