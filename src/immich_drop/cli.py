"""`immich-drop`: start the server; `immich-drop migrate`: bring the database schema up to date and exit.

Settings come from the environment and `.env`. A bad setting ends start-up with one line naming it
(exit 2), never a traceback. The server also migrates at start-up; `migrate` is for deployments that
want it as its own step.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["migrate"], ["serve"]):
        print("usage: immich-drop [serve | migrate]", file=sys.stderr)
        return 2

    from .config import ConfigError, Settings

    try:
        settings = Settings.from_env()
    except ConfigError as err:
        print(f"immich-drop: configuration error: {err}", file=sys.stderr)
        return 2

    from . import logs

    logs.configure(settings.log_level, settings.log_format)
    if args == ["migrate"]:
        from .db import open_engine

        try:
            open_engine(settings.db_url).dispose()
        except Exception as err:  # a driver's error: say it in one line
            print(f"immich-drop: migration failed: {type(err).__name__}: {str(err).splitlines()[0]}", file=sys.stderr)
            return 1
        print("immich-drop: database is up to date", file=sys.stderr)
        return 0

    import uvicorn

    from .app import create_app
    from .http_edge import uvicorn_options

    _fewer_malloc_arenas()
    try:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level,
                    log_config=None, proxy_headers=False, server_header=False, lifespan="on",
                    # status events are a few dozen bytes of JSON: compressing each costs CPU and saves nothing
                    ws_per_message_deflate=False, **uvicorn_options(settings))
    except OSError as err:  # e.g. the port is taken or DATA_DIR is read-only
        print(f"immich-drop: cannot start: {err}", file=sys.stderr)
        return 1
    return 0


def _fewer_malloc_arenas() -> None:
    """glibc gives each thread that allocates its own malloc arena; with file I/O in a thread pool that
    grows the resident size by tens of MB for nothing. Two arenas are plenty here (measured in bench/)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass  # not glibc: nothing to tune


if __name__ == "__main__":
    sys.exit(main())
