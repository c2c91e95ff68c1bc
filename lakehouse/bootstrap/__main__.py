"""`make setup`: install everything the project needs, idempotently.

Runs with the system Python and the standard library only, because it is what creates the
virtualenvs the rest of the package runs in. Each step checks before it acts, so a second
run with everything present only verifies and finishes in seconds.
"""

from __future__ import annotations

import argparse
import sys
import time

from lakehouse.bootstrap import artifacts, debian, dotenv, jars, venvs
from lakehouse.bootstrap.common import PROJECT_ROOT, SetupError, say


def main(argv: list[str] | None = None) -> int:
    steps = [
        ("debian", "Debian packages", debian.ensure),
        ("venvs", "Python environments", venvs.ensure),
        ("jars", "jars from Maven Central", jars.ensure),
        ("functions", "the project's Flink functions (jvm/functions)", jars.build_functions),
        ("artifacts", "binaries", artifacts.ensure),
        ("dotenv", "local .env", dotenv.ensure),
    ]
    parser = argparse.ArgumentParser(prog="python3 -m lakehouse.bootstrap", description=__doc__)
    parser.add_argument(
        "--only",
        choices=[key for key, _, _ in steps],
        action="append",
        help="run only these steps (repeatable); default: all",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        for key, title, step in steps:
            if args.only and key not in args.only:
                continue
            t0 = time.monotonic()
            say(f"[setup] {title} ...")
            step(PROJECT_ROOT)
            say(f"[setup] {title}: ok ({time.monotonic() - t0:.1f}s)")
    except SetupError as exc:
        say(f"[setup] FAILED: {exc}")
        return 1
    say(f"[setup] done in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
