"""Where the files that are not Python live: `migrations/` and `web/`.

In a checkout they sit beside `src/`; in an installed wheel (the container image) they are packaged
inside `immich_drop/`. Both functions return the first that exists.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def _find(name: str, marker: str) -> Path:
    for candidate in (HERE / name, HERE.parents[1] / name):
        if (candidate / marker).is_file():
            return candidate
    raise RuntimeError(f"the {name} folder is missing from this installation")


def migrations_dir() -> Path:
    return _find("migrations", "env.py")


def web_dir() -> Path:
    return _find("web", "index.html")
