"""The memory limit this process runs under, read from its cgroup (v1 or v2).

Inside a container the host's free memory says little: the kernel's OOM killer
acts on the cgroup's limit. Every read here is best effort; anything missing,
unreadable or malformed means "no limit known" (``None``), never an exception.

Usage leaves out inactive file cache, as ``docker stats`` does: the kernel
reclaims that cache before it kills anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["MemoryLimit", "available_under_limit", "memory_limit"]

# cgroup v1 reports "no limit" as PAGE_COUNTER_MAX pages, about 2**63; anything
# this large is no limit in practice.
_V1_UNLIMITED = 2**62


@dataclass(frozen=True)
class MemoryLimit:
    """A cgroup memory limit and the memory charged against it.

    Attributes:
        limit_bytes: The limit.
        usage_bytes: Memory charged to the cgroup, less inactive file cache.
        source: Where it was read, e.g. ``"cgroup v2 /sys/fs/cgroup/user.slice"``.
    """

    limit_bytes: int
    usage_bytes: int
    source: str


def memory_limit(root: Path = Path("/"), host_total: int | None = None) -> MemoryLimit | None:
    """Find the memory limit of the current process's cgroup.

    A v1 ``memory`` controller line in ``/proc/self/cgroup`` wins over the v2
    ``0::`` line: on hybrid hosts both appear and only v1 carries the memory
    controller. When the cgroup's own directory is not there (a container that
    mounts its cgroup at the hierarchy root), the hierarchy root is read instead.

    Args:
        root: Filesystem root to read ``proc/`` and ``sys/`` under; tests pass a fake tree.
        host_total: Physical memory in bytes; a limit at or above it binds nothing.

    Returns:
        The limit, or ``None`` when there is none or it cannot be read.
    """
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    v2_path: str | None = None
    for line in lines:
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if "memory" in controllers.split(","):
            return _v1_limit(root, path, host_total)
        if hierarchy == "0" and controllers == "":
            v2_path = path
    if v2_path is None:
        return None
    return _v2_limit(root, v2_path, host_total)


def available_under_limit(limit: MemoryLimit) -> int:
    """Return the bytes left before the limit, never below zero."""
    return max(0, limit.limit_bytes - limit.usage_bytes)


def _v1_limit(root: Path, path: str, host_total: int | None) -> MemoryLimit | None:
    """Read a cgroup v1 memory controller's limit and usage."""
    directory = _own_directory(root / "sys/fs/cgroup/memory", path)
    limit = _read_int(directory / "memory.limit_in_bytes")
    usage = _read_int(directory / "memory.usage_in_bytes")
    if limit is None or usage is None:
        return None
    stat = _read_stat(directory / "memory.stat")
    # A parent's tighter limit binds this cgroup too; v1 reports the effective one here.
    limit = min(limit, stat.get("hierarchical_memory_limit", limit))
    if limit >= _V1_UNLIMITED or _at_least_host(limit, host_total):
        return None
    usage = max(0, usage - stat.get("total_inactive_file", 0))
    return MemoryLimit(limit, usage, f"cgroup v1 {_shown(root, directory)}")


def _v2_limit(root: Path, path: str, host_total: int | None) -> MemoryLimit | None:
    """Read the tightest finite ``memory.max`` from the cgroup up to the v2 root.

    The limit and usage come from the same cgroup: a parent's limit is charged
    with everything below it, not just this process's cgroup.
    """
    hierarchy = root / "sys/fs/cgroup"
    directory = _own_directory(hierarchy, path)
    best: MemoryLimit | None = None
    for level in _up_to(directory, hierarchy):
        try:
            text = (level / "memory.max").read_text().strip()
        except (OSError, UnicodeDecodeError):
            continue  # the root cgroup has no memory.max; other levels may lack the controller
        if text == "max":
            continue
        limit = _parse_int(text)
        usage = _read_int(level / "memory.current")
        if limit is None or usage is None or _at_least_host(limit, host_total):
            continue
        if best is None or limit < best.limit_bytes:
            inactive = _read_stat(level / "memory.stat").get("inactive_file", 0)
            best = MemoryLimit(limit, max(0, usage - inactive), f"cgroup v2 {_shown(root, level)}")
    return best


def _own_directory(hierarchy: Path, path: str) -> Path:
    """Return the cgroup's directory, or the hierarchy root when it is not mounted."""
    directory = hierarchy / path.strip().lstrip("/")
    return directory if directory.is_dir() else hierarchy


def _up_to(directory: Path, top: Path) -> list[Path]:
    """Return ``directory`` and its parents up to and including ``top``."""
    levels = [directory]
    while levels[-1] != top and levels[-1] != levels[-1].parent:
        levels.append(levels[-1].parent)
    return levels


def _at_least_host(limit: int, host_total: int | None) -> bool:
    """Whether a limit is no smaller than physical memory, so binds nothing."""
    return host_total is not None and limit >= host_total


def _read_int(path: Path) -> int | None:
    """Read a file holding one integer; ``None`` when missing or malformed."""
    try:
        return _parse_int(path.read_text())
    except (OSError, UnicodeDecodeError):
        return None


def _parse_int(text: str) -> int | None:
    """Parse an integer; ``None`` when it is not one."""
    try:
        return int(text.strip())
    except ValueError:
        return None


def _read_stat(path: Path) -> dict[str, int]:
    """Read a ``memory.stat`` file of ``key value`` lines; empty when unreadable."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return {}
    stat: dict[str, int] = {}
    for line in lines:
        key, _, value = line.partition(" ")
        number = _parse_int(value)
        if number is not None:
            stat[key] = number
    return stat


def _shown(root: Path, directory: Path) -> str:
    """Return ``directory`` as it is named on the host, without the test root."""
    try:
        return "/" + directory.relative_to(root).as_posix()
    except ValueError:
        return str(directory)
