"""`make bench`: run every bench/bench_*.py and write bench/RESULTS.md.

Each benchmark is a plain script that prints a Markdown section (medians, min–max, and a ratio
against a baseline measured in the same run). This runner adds a description of the machine, so a
figure is never quoted without the conditions it was measured under.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.1f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{platform.node()}: {os.cpu_count()} cores ({cpu}){mem}; {platform.platform()}; "
            f"Python {platform.python_version()}")


def main(selected: list[str]) -> int:
    # bench_settings.py and bench_urls.py are modules imported by bench_api.py, not benchmarks:
    # only files that run as a script (`if __name__ == "__main__":`) are benchmarks.
    scripts = sorted(s for s in HERE.glob("bench_*.py") if '__name__ == "__main__"' in s.read_text())
    if selected:
        scripts = [s for s in scripts if any(name in s.name for name in selected)]
    sections = [
        "# Benchmark results",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {machine()}.",
        "Every figure is a median over repeated runs with its min–max, beside a baseline measured in the "
        "same run; ratios compare the two. The machines are shared and noisy: read ratios, not absolutes.",
        "",
    ]
    failed = 0
    for script in scripts:
        print(f"== {script.name}", flush=True)
        started = time.monotonic()
        # Scripts import `mev` and `bench`; run as files, they only see bench/ on sys.path.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        result = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, env=env)
        elapsed = time.monotonic() - started
        print(result.stdout[-4000:], result.stderr[-2000:] if result.returncode else "", flush=True)
        if result.returncode != 0:
            failed += 1
            sections += [f"## {script.stem}", "", f"FAILED (exit {result.returncode}) after {elapsed:.0f} s:",
                         "", "```", result.stderr[-3000:], "```", ""]
        else:
            output = result.stdout.strip()
            if not output.startswith("## "):
                # Plain-text reports keep their layout inside a code block, under the script's name.
                output = f"## {script.stem}\n\n```\n{output}\n```"
            sections += [output, "", f"_({script.name}: {elapsed:.0f} s)_", ""]
    (HERE / "RESULTS.md").write_text("\n".join(sections) + "\n")
    print(f"wrote {HERE / 'RESULTS.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
