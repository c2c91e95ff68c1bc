"""Create a local .env with fresh random credentials when there is none.

Credentials never live in code or in committed files: .env.example lists the variables,
and this step fills in random local-only values. An existing .env is never touched.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from lakehouse.bootstrap.common import say

SECRET_MARKER = "<generated-by-make-setup>"


def render(example: str) -> str:
    return re.sub(re.escape(SECRET_MARKER), lambda _m: secrets.token_urlsafe(18), example)


def ensure(root: Path) -> None:
    env_file = root / ".env"
    if env_file.exists():
        return
    env_file.write_text(render((root / ".env.example").read_text()))
    env_file.chmod(0o600)
    say(f"[setup] wrote {env_file} with random local credentials")
