"""What machine a benchmark ran on: the CPU's name, its vector features, native bf16."""
from __future__ import annotations

import os
import platform


def _cpuinfo() -> tuple[str, set[str]]:
    name, flags = "", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not name:
                    name = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return name or platform.processor() or platform.machine(), flags


def cpu_summary() -> str:
    """One line: CPU name, usable cores, AVX2 / AVX-512 / AMX, and whether bf16 is native."""
    import torch

    from trainer.distributed import cpu_has_bf16

    name, flags = _cpuinfo()
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    simd = [label for flag, label in (("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx512_bf16", "AVX512-BF16"),
                                      ("amx_bf16", "AMX-BF16")) if flag in flags]
    return (f"CPU: {name}, {cores} cores, {'/'.join(simd) or 'no AVX2'}; "
            f"native bf16: {'yes' if cpu_has_bf16() else 'no'}; torch {torch.__version__}")
