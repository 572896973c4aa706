"""Print docs/benchmarks.md tables from a pytest-benchmark JSON file.

Usage: ``python benchmarks/report.py results.json``. Medians, in microseconds,
and each row's ratio to the first row of its group (the compiled codec).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def main(path: str) -> None:
    with open(path) as file:
        data = json.load(file)
    groups: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for bench in data["benchmarks"]:
        name = bench["name"].replace("test_", "")
        groups[bench["group"] or ""].append((name, bench["stats"]["median"] * 1e6))
    machine = data["machine_info"]
    print(
        f"Machine: {machine.get('cpu', {}).get('brand_raw', '?')}, "
        f"{machine.get('cpu', {}).get('count', '?')} cores, Python {machine['python_version']}; "
        f"{data['datetime'][:10]}\n"
    )
    for group in sorted(groups):
        rows = groups[group]
        base = rows[0][1]
        print(f"| {group} | median µs | × first row |\n|---|---:|---:|")
        for name, median in rows:
            print(f"| {name} | {median:.2f} | {median / base:.2f} |")
        print()


if __name__ == "__main__":
    main(sys.argv[1])
