"""What every benchmark records beside its figures: the machine and the memory high-water marks
(stdlib only, so a parent process that spawns measured children stays small)."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

MB = 1024 * 1024


def maxrss_mb() -> float:
    """The process's resident high-water mark (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if sys.platform == "darwin" else peak / 1024


def vmhwm_mb() -> float | None:
    """VmHWM (the memory map's own resident high-water mark) from /proc, None elsewhere."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset the resident high-water mark to the current RSS (Linux: clear_refs 5), so the
    imports' own transient peak cannot hide the build's. False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def cpu_model() -> str:
    """The CPU model: lscpu's 'Model name', else /proc/cpuinfo, else platform.processor()."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(packages: tuple[str, ...] = ()) -> dict[str, Any]:
    """Machine and versions (of numpy and pyarrow, and of `packages`)."""
    try:
        total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / MB
    except (ValueError, OSError, AttributeError):
        total_mb = None
    return {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_total_mb": round(total_mb) if total_mb else None,
        "python": platform.python_version(),
        "numpy": version("numpy"),
        "pyarrow": version("pyarrow"),
        **{name: version(name) for name in packages},
    }


def machine_line(m: dict[str, Any]) -> str:
    return (
        f"{m['cpu_model']}, {m['cpu_count']} CPUs, {m['memory_total_mb'] / 1024:.1f} GiB RAM, "
        f"{m['platform']}, Python {m['python']}, numpy {m['numpy']}, pyarrow {m['pyarrow']}"
    )
