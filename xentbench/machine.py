"""What this machine's CPU is and which vector extensions it has, read from ``/proc/cpuinfo``.

The kernels differ by machine: Numba compiles for the host CPU, TensorFlow
turns oneDNN on by default where the CPU has AVX512_VNNI, AVX512_BF16 or AMX,
and PyTorch picks its kernels by the same flags. The report's header, the
roofline file and ``xentbench verify`` name the CPU with these functions.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

#: The flags worth naming with a figure, in the order the report lists them.
SIMD = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
        "amx_tile")
#: The flags under which TensorFlow (2.9 and later) turns oneDNN on by default.
ONEDNN_DEFAULT = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile")


def read(path) -> str:
    """The text of ``path``, or ``""`` where it cannot be read (not Linux, say)."""
    try:
        return Path(path).read_text()
    except OSError:
        return ""


@functools.cache
def _first_cpu() -> dict[str, str]:
    """The ``key: value`` fields of the first processor in ``/proc/cpuinfo``."""
    fields: dict[str, str] = {}
    for line in read("/proc/cpuinfo").splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def flags() -> frozenset[str]:
    """The CPU's feature flags as the kernel names them (``avx2``, ``avx512f``, ...)."""
    return frozenset(_first_cpu().get("flags", "").split())


def simd() -> list[str]:
    """The vector extensions of ``SIMD`` this CPU has."""
    have = flags()
    return [f for f in SIMD if f in have]


def vector_width() -> str:
    """``"AVX-512"``, ``"AVX2, no AVX-512"`` or ``"no AVX2"``: the one-phrase summary a figure is quoted with."""
    have = flags()
    return "AVX-512" if "avx512f" in have else "AVX2, no AVX-512" if "avx2" in have else "no AVX2"


def cpu() -> str:
    """The CPU's model name with its family, model and stepping, e.g. ``AMD EPYC (cpu family 25, model 17, ...)``."""
    fields = _first_cpu()
    model = fields.get("model name") or platform.processor() or "unknown"
    ident = ", ".join(f"{k} {fields[k]}" for k in ("cpu family", "model", "stepping") if fields.get(k))
    if ident:
        model += f" ({ident}{', virtual machine' if 'hypervisor' in flags() else ''})"
    return model
