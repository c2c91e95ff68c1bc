"""Create a local .env with fresh random credentials when there is none.

Credentials never live in code or in committed files: .env.example lists the variables,
and this step fills in random local-only values. An existing .env keeps every value it has;
variables added to .env.example since it was written are appended (a new service's login).
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from lakehouse.bootstrap.common import assignments, say

SECRET_MARKER = "<generated-by-make-setup>"


def render(example: str) -> str:
    return re.sub(re.escape(SECRET_MARKER), lambda _m: secrets.token_urlsafe(18), example)


def ensure(root: Path, env_file: Path | None = None) -> None:
    env_file = env_file or root / ".env"
    example = (root / ".env.example").read_text()
    if not env_file.exists():
        env_file.write_text(render(example))
        env_file.chmod(0o600)
        say(f"[setup] wrote {env_file} with random local credentials")
        return
    text = env_file.read_text()
    have = assignments(text)
    missing = {k: v for k, v in assignments(example).items() if k not in have}
    if missing:
        added = "".join(f"{k}={render(v)}\n" for k, v in missing.items())
        env_file.write_text(text + ("" if text.endswith("\n") or not text else "\n") + added)
        say(f"[setup] added {', '.join(missing)} to {env_file}")
