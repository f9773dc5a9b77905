"""Heavy imports in one place: torch and transformer_lens, loaded offline.

Importing this module costs seconds (transformer_lens); the app does it on its engine thread.
"""
from __future__ import annotations

import functools
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the network
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

import torch  # noqa: E402
import transformer_lens.model_bridge.sources.native  # noqa: E402,F401  (attaches boot_native)
from transformer_lens.config import TransformerBridgeConfig  # noqa: E402
from transformer_lens.model_bridge import TransformerBridge  # noqa: E402

# Flush denormal floats to zero. As training goes on, optimizer state and weights collect values
# below float32's normal range, and CPU arithmetic on them is slow: a counting-model step measured
# 4.5x slower at step 11,000 (2.15 vs 9.57 steps/s). Set before torch starts its worker threads,
# which inherit the floating-point mode of the thread that creates them.
torch.set_flush_denormal(True)


def flush_denormals() -> None:
    """The same setting for the calling thread: the mode is per thread, so a Python thread that
    trains or samples (the app's workers) sets it for itself."""
    torch.set_flush_denormal(True)


def pick_device(requested: str | None = None) -> torch.device:
    """CUDA when present (or asked for), otherwise the CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


__all__ = ["torch", "TransformerBridge", "TransformerBridgeConfig", "pick_device"]


def bf16_pays(device) -> bool:
    """Whether bfloat16 products run faster than fp32 here: on CUDA with bf16 support; on a CPU,
    measured (once per process), not read off the CPU flags: a Xeon with avx512_bf16 but no AMX ran
    a text model's bf16 re-run 1.8x slower than fp32, though the flag said yes."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return _cpu_bf16_faster()
    return False


@functools.cache
def _cpu_bf16_faster(rows: int = 256, width: int = 768, repeats: int = 5) -> bool:
    """Times the same (rows, width) x (width, width) product in both precisions, best of `repeats`
    each (0.1-0.3 s with the kernels' first calls); bf16 must win by 10% to be chosen (it also costs accuracy)."""
    import time

    def best(dtype) -> float:
        a, w = torch.randn(rows, width, dtype=dtype), torch.randn(width, width, dtype=dtype)
        torch.nn.functional.linear(a, w)  # warm-up: the kernel's first call picks its path
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            torch.nn.functional.linear(a, w)
            times.append(time.perf_counter() - t)
        return min(times)

    with torch.inference_mode():
        return best(torch.bfloat16) < 0.9 * best(torch.float32)
