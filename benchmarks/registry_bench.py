"""Register every topic of ts_xml v28 (3348 subjects) with the local registry.

Each round starts a fresh server (its own process and SQLite file), then
times a cold registration (every subject new) and a warm one (nothing
changed), through the same library call as ``sal-kafka registry register``.

Run: ``.venv/bin/python benchmarks/registry_bench.py [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sal_kafka import SchemaRegistry  # noqa: E402
from sal_kafka.schemas import load_components  # noqa: E402
from tests.conftest import SAL_INTERFACES  # noqa: E402
from tests.registry_server import RegistryProcess  # noqa: E402


def one_round(components: list) -> tuple[float, float, Counter, Counter]:
    with tempfile.TemporaryDirectory() as tmp:
        server = RegistryProcess(Path(tmp) / "registry.db").start()
        try:
            with SchemaRegistry(server.url) as registry:
                start = time.perf_counter()
                cold = registry.register_components(components)
                cold_seconds = time.perf_counter() - start
            with SchemaRegistry(server.url) as registry:  # a new client: no client-side cache
                start = time.perf_counter()
                warm = registry.register_components(components)
                warm_seconds = time.perf_counter() - start
        finally:
            server.stop()
    return cold_seconds, warm_seconds, Counter(r.status for r in cold), Counter(r.status for r in warm)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--no-bulk",
        action="store_true",
        help="skip GET /schemas?latestOnly (as with a registry without it): one lookup per subject",
    )
    args = parser.parse_args()
    if args.no_bulk:
        SchemaRegistry._latest_versions = lambda self: {}  # type: ignore[method-assign]
    components = load_components((), SAL_INTERFACES)
    colds, warms = [], []
    for i in range(args.rounds):
        cold, warm, cold_counts, warm_counts = one_round(components)
        colds.append(cold)
        warms.append(warm)
        print(f"round {i + 1}: cold {cold:.2f} s {dict(cold_counts)}; warm {warm:.2f} s {dict(warm_counts)}")
    mode = "one lookup per subject" if args.no_bulk else "bulk latest-versions read"
    print(f"\n| registration of 3348 subjects ({mode}) | median s | rounds |\n|---|---:|---:|")
    print(f"| cold (all new) | {statistics.median(colds):.2f} | {args.rounds} |")
    print(f"| warm (all unchanged) | {statistics.median(warms):.2f} | {args.rounds} |")


if __name__ == "__main__":
    main()
