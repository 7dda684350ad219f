"""Logging set-up: one line per event, plain or JSON (LOG_FORMAT=json), never a secret.

Invite tokens travel in URLs (`/i/{token}`, `/api/i/{token}/…`, `/ws?invite={token}`), so the
access log's paths are rewritten to `/i/…` and `invite=…` before anything is written; no module logs keys, passwords or cookies.
"""

from __future__ import annotations

import json
import logging
import re
import time

# (all that follows `/i/`: `/api/i/a/../TOKEN` is a 404 that still named the link: cold review)
TOKEN_PATH = re.compile(r"(/(?:api/)?i/)[^?\s]+")
# ...and in the status channel's query (`/ws?invite={token}`), which uvicorn logs as it accepts it,
# as the client wrote it: `?%69nvite=` or `?x=1;invite=` still named the link (attack run). No query
# of ours is worth a log line's risk: every path's query is written as `?…`.
QUERY = re.compile(r"(/[^\s?]*)\?\S+")  # (to the next space: `?x="&invite=` hid the rest behind its quote)


def redact(text: str) -> str:
    return QUERY.sub(r"\1?…", TOKEN_PATH.sub(r"\1…", text))


class Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + "Z",
                 "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str, fmt: str) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(Redact())
    handler.setFormatter(JsonFormatter() if fmt == "json"
                         else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its request lines would repeat ours
    # tuspyserver logs every HEAD's upload info at INFO; the guard gives it no link token, and its
    # lines say nothing ours do not.
    logging.getLogger("tuspyserver").setLevel(logging.WARNING)
