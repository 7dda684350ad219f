"""`immich-drop`: start the server with settings from the environment and `.env`.

A bad setting ends start-up with one line naming it (exit 2), never a traceback.
"""

from __future__ import annotations

import logging
import sys


def main(argv: list[str] | None = None) -> int:
    from .config import ConfigError, Settings

    try:
        settings = Settings.from_env()
    except ConfigError as err:
        print(f"immich-drop: configuration error: {err}", file=sys.stderr)
        return 2

    import uvicorn

    from .app import create_app

    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app(settings)
        uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                    proxy_headers=False, server_header=False, lifespan="on")
    except OSError as err:  # e.g. the port is taken or DATA_DIR is read-only
        print(f"immich-drop: cannot start: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
