"""Tests for reading the cgroup memory limit, on fake /proc and /sys trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from enduro.monitor._cgroup import MemoryLimit, available_under_limit, memory_limit

GIB = 2**30
V1_UNLIMITED = "9223372036854771712"  # what v1 really reports when no limit is set
V2_CGROUP = "12:pids:/x\n0::/system.slice/job.service\n"


def _write(root: Path, files: dict[str, str]) -> Path:
    """Create ``files`` (relative path -> content) under ``root``; return ``root``."""
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


def test_v2_limited(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "proc/self/cgroup": V2_CGROUP,
            "sys/fs/cgroup/system.slice/job.service/memory.max": f"{2 * GIB}\n",
            "sys/fs/cgroup/system.slice/job.service/memory.current": f"{GIB}\n",
        },
    )
    assert memory_limit(root) == MemoryLimit(
        limit_bytes=2 * GIB,
        usage_bytes=GIB,
        source="cgroup v2 /sys/fs/cgroup/system.slice/job.service",
    )


def test_v2_max_takes_the_limit_of_a_parent(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "proc/self/cgroup": V2_CGROUP,
            "sys/fs/cgroup/system.slice/job.service/memory.max": "max\n",
            "sys/fs/cgroup/system.slice/job.service/memory.current": f"{GIB}\n",
            "sys/fs/cgroup/system.slice/memory.max": f"{4 * GIB}\n",
            "sys/fs/cgroup/system.slice/memory.current": f"{3 * GIB}\n",
        },
    )
    limit = memory_limit(root)
    assert limit == MemoryLimit(4 * GIB, 3 * GIB, "cgroup v2 /sys/fs/cgroup/system.slice")
    assert available_under_limit(limit) == GIB


def test_v2_tightest_limit_on_the_way_up_wins(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "proc/self/cgroup": V2_CGROUP,
            "sys/fs/cgroup/system.slice/job.service/memory.max": f"{8 * GIB}\n",
            "sys/fs/cgroup/system.slice/job.service/memory.current": f"{GIB}\n",
            "sys/fs/cgroup/system.slice/memory.max": f"{4 * GIB}\n",
            "sys/fs/cgroup/system.slice/memory.current": f"{3 * GIB}\n",
        },
    )
    limit = memory_limit(root)
    assert limit is not None
    assert limit.limit_bytes == 4 * GIB


def test_v2_unlimited_everywhere_is_none(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "proc/self/cgroup": V2_CGROUP,
            "sys/fs/cgroup/system.slice/job.service/memory.max": "max\n",
            "sys/fs/cgroup/system.slice/job.service/memory.current": f"{GIB}\n",
            "sys/fs/cgroup/system.slice/memory.max": "max\n",
            "sys/fs/cgroup/system.slice/memory.current": f"{GIB}\n",
            "sys/fs/cgroup/memory.stat": "inactive_file 0\n",  # the root has no memory.max
        },
    )
    assert memory_limit(root) is None


def test_v2_container_with_own_cgroup_at_the_root(tmp_path: Path) -> None:
    # cgroup namespaces show "/" as the path; the container's cgroup is the mount root.
    root = _write(
        tmp_path,
        {
            "proc/self/cgroup": "0::/\n",
            "sys/fs/cgroup/memory.max": f"{GIB}\n",
            "sys/fs/cgroup/memory.current": f"{GIB // 2}\n",
        },
    )
    assert memory_limit(root) == MemoryLimit(GIB, GIB // 2, "cgroup v2 /sys/fs/cgroup")


def test_v2_subtracts_inactive_file_cache(tmp_path: Path) -> None:
    service = "sys/fs/cgroup/system.slice/job.service"
    root = _write(
        tmp_path,
        {
            "proc/self/cgroup": V2_CGROUP,
            f"{service}/memory.max": f"{2 * GIB}\n",
            f"{service}/memory.current": f"{GIB}\n",
            f"{service}/memory.stat": f"anon 1000\nfile 500\ninactive_file {GIB // 4}\n",
        },
    )
    limit = memory_limit(root)
    assert limit is not None
    assert limit.usage_bytes == GIB - GIB // 4
    assert available_under_limit(limit) == 2 * GIB - (GIB - GIB // 4)


def test_v2_limit_above_host_memory_is_none(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "proc/self/cgroup": "0::/\n",
            "sys/fs/cgroup/memory.max": f"{64 * GIB}\n",
            "sys/fs/cgroup/memory.current": f"{GIB}\n",
        },
    )
    assert memory_limit(root, host_total=16 * GIB) is None
    assert memory_limit(root, host_total=128 * GIB) is not None


def _v1_tree(root: Path, cgroup_line: str, limit: str, stat: str = "") -> Path:
    memory = "sys/fs/cgroup/memory/docker/abc"
    return _write(
        root,
        {
            "proc/self/cgroup": f"12:pids:/docker/abc\n{cgroup_line}\n0::/\n",
            f"{memory}/memory.limit_in_bytes": f"{limit}\n",
            f"{memory}/memory.usage_in_bytes": f"{GIB}\n",
            f"{memory}/memory.stat": stat,
        },
    )


def test_v1_limited(tmp_path: Path) -> None:
    root = _v1_tree(tmp_path, "4:memory:/docker/abc", str(2 * GIB))
    assert memory_limit(root) == MemoryLimit(
        2 * GIB, GIB, "cgroup v1 /sys/fs/cgroup/memory/docker/abc"
    )


def test_v1_with_comma_separated_controllers(tmp_path: Path) -> None:
    root = _v1_tree(tmp_path, "5:cpu,memory:/docker/abc", str(2 * GIB))
    limit = memory_limit(root)
    assert limit is not None
    assert limit.limit_bytes == 2 * GIB


def test_v1_controller_name_must_match_exactly(tmp_path: Path) -> None:
    root = _v1_tree(tmp_path, "5:memory_pressure:/docker/abc", str(2 * GIB))
    assert memory_limit(root) is None  # falls to the 0::/ line, which has no memory.max


@pytest.mark.parametrize("limit", [V1_UNLIMITED, str(2**62)])
def test_v1_unlimited_is_none(tmp_path: Path, limit: str) -> None:
    assert memory_limit(_v1_tree(tmp_path, "4:memory:/docker/abc", limit)) is None


def test_v1_limit_at_host_memory_is_none(tmp_path: Path) -> None:
    root = _v1_tree(tmp_path, "4:memory:/docker/abc", str(16 * GIB))
    assert memory_limit(root, host_total=16 * GIB) is None
    assert memory_limit(root, host_total=32 * GIB) is not None


def test_v1_parent_limit_from_hierarchical_memory_limit(tmp_path: Path) -> None:
    stat = f"hierarchical_memory_limit {3 * GIB}\n"
    root = _v1_tree(tmp_path, "4:memory:/docker/abc", V1_UNLIMITED, stat)
    limit = memory_limit(root)
    assert limit is not None
    assert limit.limit_bytes == 3 * GIB


def test_v1_subtracts_total_inactive_file_never_below_zero(tmp_path: Path) -> None:
    stat = f"inactive_file 1\ntotal_inactive_file {GIB // 4}\n"
    root = _v1_tree(tmp_path, "4:memory:/docker/abc", str(2 * GIB), stat)
    limit = memory_limit(root)
    assert limit is not None
    assert limit.usage_bytes == GIB - GIB // 4

    stat = f"total_inactive_file {2 * GIB}\n"
    limit = memory_limit(_v1_tree(tmp_path, "4:memory:/docker/abc", str(2 * GIB), stat))
    assert limit is not None
    assert limit.usage_bytes == 0


def test_v1_own_cgroup_mounted_at_the_hierarchy_root(tmp_path: Path) -> None:
    # Inside a container the path names the host's cgroup, which is not mounted.
    root = _write(
        tmp_path,
        {
            "proc/self/cgroup": "4:memory:/docker/abc\n",
            "sys/fs/cgroup/memory/memory.limit_in_bytes": f"{GIB}\n",
            "sys/fs/cgroup/memory/memory.usage_in_bytes": f"{GIB // 2}\n",
        },
    )
    assert memory_limit(root) == MemoryLimit(GIB, GIB // 2, "cgroup v1 /sys/fs/cgroup/memory")


@pytest.mark.parametrize(
    "files",
    [
        pytest.param({}, id="no-proc"),
        pytest.param({"proc/self/cgroup": V2_CGROUP}, id="v2-no-sys"),
        pytest.param(
            {
                "proc/self/cgroup": V2_CGROUP,
                "sys/fs/cgroup/system.slice/job.service/memory.max": f"{GIB}\n",
            },
            id="v2-no-current",
        ),
        pytest.param(
            {
                "proc/self/cgroup": V2_CGROUP,
                "sys/fs/cgroup/system.slice/job.service/memory.max": "lots\n",
                "sys/fs/cgroup/system.slice/job.service/memory.current": f"{GIB}\n",
            },
            id="v2-garbage",
        ),
        pytest.param({"proc/self/cgroup": "4:memory:/docker/abc\n"}, id="v1-no-sys"),
        pytest.param(
            {
                "proc/self/cgroup": "4:memory:/docker/abc\n",
                "sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": f"{GIB}\n",
            },
            id="v1-no-usage",
        ),
        pytest.param({"proc/self/cgroup": "garbage\n\n"}, id="proc-garbage"),
    ],
)
def test_missing_or_malformed_files_give_none(tmp_path: Path, files: dict[str, str]) -> None:
    assert memory_limit(_write(tmp_path, files)) is None


def test_unreadable_file_gives_none(tmp_path: Path) -> None:
    root = _write(tmp_path, {"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.current": "1\n"})
    (root / "sys/fs/cgroup/memory.max").mkdir()  # reading a directory raises an OSError
    assert memory_limit(root) is None


def test_available_under_limit_never_negative() -> None:
    assert available_under_limit(MemoryLimit(GIB, 2 * GIB, "cgroup v2 /")) == 0
    assert available_under_limit(MemoryLimit(3 * GIB, GIB, "cgroup v2 /")) == 2 * GIB
