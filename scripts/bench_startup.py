"""Startup wall time of `vibe --version` and `vibe run --help` (median of N subprocess runs),
beside Mistral Vibe's `vibe --version` measured in the same run. Goal: ours <= 1/3 of theirs.

    python scripts/bench_startup.py [--runs 10] [--theirs /tmp/mvibe/bin/vibe] [--json]
Their vibe comes from `--theirs`, else $MISTRAL_VIBE_BIN, else /tmp/mvibe/bin/vibe if present.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_THEIRS = Path("/tmp/mvibe/bin/vibe")


def time_runs(argv: list[str], runs: int, env: dict[str, str]) -> list[float]:
    """Wall seconds of `runs` runs, after one untimed warm-up (page cache, .pyc files)."""
    times = []
    for i in range(runs + 1):
        start = time.perf_counter()
        proc = subprocess.run(
            argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=120
        )
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip().splitlines()[-1:]
            raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {err}")
        if i:
            times.append(elapsed)
    return times


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "min_ms": round(ordered[0] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "runs": len(ordered),
    }


def our_vibe() -> list[str]:
    script = Path(sys.executable).with_name("vibe")
    return [str(script)] if script.exists() else [sys.executable, "-m", "vibe"]


def their_vibe(flag: str | None) -> Path | None:
    candidate = flag or os.environ.get("MISTRAL_VIBE_BIN")
    if candidate:
        return Path(candidate)
    return DEFAULT_THEIRS if DEFAULT_THEIRS.exists() else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=10, help="timed runs per command (default 10)")
    p.add_argument("--theirs", help="path of Mistral Vibe's `vibe` executable")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")

    with tempfile.TemporaryDirectory(prefix="vibe-bench-") as home:
        # A fresh, empty home for both tools, so no user config or session is read.
        env = {**os.environ, "VIBE_HOME": home, "HOME": home, "NO_COLOR": "1"}
        ours = our_vibe()
        results: dict[str, dict[str, float]] = {
            "ours --version": summary(time_runs([*ours, "--version"], args.runs, env)),
            "ours run --help": summary(time_runs([*ours, "run", "--help"], args.runs, env)),
        }
        theirs = their_vibe(args.theirs)
        if theirs is not None and theirs.exists():
            results["mistral-vibe --version"] = summary(
                time_runs([str(theirs), "--version"], args.runs, env)
            )
        note = None
        if "mistral-vibe --version" not in results:
            note = (
                "Mistral Vibe not found: comparison skipped (install it with "
                "`python3.12 -m venv /tmp/mvibe && /tmp/mvibe/bin/pip install "
                "mistral-vibe==2.18.4`, or pass --theirs PATH)"
            )

    ratio = None
    if "mistral-vibe --version" in results:
        ratio = (
            results["ours --version"]["median_ms"] / results["mistral-vibe --version"]["median_ms"]
        )
    if args.json:
        out = {"results": results, "ratio": ratio and round(ratio, 3), "note": note}
        print(json.dumps(out, indent=2))
        return 0
    for name, r in results.items():
        print(
            f"{name:24} median {r['median_ms']:8.1f} ms  "
            f"(min {r['min_ms']:.1f}, max {r['max_ms']:.1f}, {r['runs']} runs)"
        )
    if ratio is not None:
        verdict = "meets" if ratio <= 1 / 3 else "MISSES"
        print(f"ours/theirs (--version): {ratio:.3f}  -> {verdict} the <= 0.333 goal")
    if note:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
