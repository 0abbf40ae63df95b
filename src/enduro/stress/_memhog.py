"""A sidecar that really takes memory: ``python -m enduro.stress._memhog PERCENT SECONDS``.

It allocates and touches 64 MB blocks until the system's memory in use is
over PERCENT (or nothing more can be had), holds them for SECONDS, and exits.
The stress tester starts it to put a run under memory pressure the monitor
can see; the pages really are resident, not just reserved.
"""

from __future__ import annotations

import sys
import time

import psutil

BLOCK = 64 * 1024 * 1024
PAGE = 4096
LIMIT_BLOCKS = 4096  # 256 GB: a bound, not a target


def squeeze(percent: float, hold: float) -> int:
    """Take memory until usage passes ``percent``; hold it ``hold`` seconds. Returns MB held."""
    blocks: list[bytearray] = []
    while psutil.virtual_memory().percent < percent and len(blocks) < LIMIT_BLOCKS:
        try:
            block = bytearray(BLOCK)
        except MemoryError:
            break
        for offset in range(0, BLOCK, PAGE):  # touch every page so it is resident
            block[offset] = 1
        blocks.append(block)
    time.sleep(hold)  # the pressure lasts this long: that is the fault
    return len(blocks) * BLOCK // (1024 * 1024)


if __name__ == "__main__":
    squeeze(float(sys.argv[1]), float(sys.argv[2]))
