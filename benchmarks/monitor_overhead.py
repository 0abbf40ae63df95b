"""What does the resource monitor cost?

The reference job over the same pages of the built-in site through enduro's
runner with the monitor sampling every second and with it off, alternating
rounds (which goes first alternates) in one process, against one site in a
separate process. Prints the pages/s of each and the ratio monitor-on /
monitor-off: the median of the per-round ratios, since a round's two runs
share the machine's mood and rounds do not.

    .venv/bin/python benchmarks/monitor_overhead.py --pages 300 --rounds 3
"""

from __future__ import annotations

import json
import statistics

from overhead import enduro_run, parse_args, site_process


def main() -> None:
    args = parse_args(__doc__, pages=300, rounds=3)
    off: list[float] = []
    on: list[float] = []
    with site_process(args.pages) as url:
        for round_ in range(args.rounds):
            for interval in (0, 1) if round_ % 2 == 0 else (1, 0):
                rate = args.pages / enduro_run(url, args.pages, monitor_interval=interval)
                (on if interval else off).append(rate)
    figures = {
        "pages": args.pages,
        "rounds": args.rounds,
        "monitor_off_pages_per_s": round(statistics.median(off), 2),
        "monitor_1s_pages_per_s": round(statistics.median(on), 2),
        "ratio": round(statistics.median(a / b for a, b in zip(on, off, strict=True)), 3),
        "ratio_of_medians": round(statistics.median(on) / statistics.median(off), 3),
        "off_each": [round(x, 2) for x in off],
        "on_each": [round(x, 2) for x in on],
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{args.pages} pages, {args.rounds} rounds (median pages/s)")
        print(f"  monitor off : {figures['monitor_off_pages_per_s']:7.2f} pages/s  {off}")
        print(f"  monitor 1 s : {figures['monitor_1s_pages_per_s']:7.2f} pages/s  {on}")
        print(
            f"  ratio on/off: {figures['ratio']:.3f} (median of rounds; of medians:"
            f" {figures['ratio_of_medians']:.3f})"
        )


if __name__ == "__main__":
    main()
