"""Private files: everything Immich Drop writes (database, staged uploads, sidecars, locks, secrets) is
for its own user only, whatever the umask: folders 0700, files 0600.

`private_dir(path)` creates a folder (and its missing parents) as 0700 and narrows one that exists
(never a sticky, shared one such as /tmp);
`private_file(path, flags)` opens a file as `os.open` does, creating it 0600.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

DIR_MODE, FILE_MODE = 0o700, 0o600


def private_dir(path: Path) -> Path:
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    with contextlib.suppress(PermissionError):  # a folder we do not own (e.g. a mounted volume's root)
        mode = path.stat().st_mode
        # a sticky folder (/tmp, /var/tmp) is shared by design: narrowing it locks every other user out
        if mode & 0o777 != DIR_MODE and not mode & stat.S_ISVTX:
            os.chmod(path, DIR_MODE)
    return path


def private_file(path: Path, flags: int) -> int:
    return os.open(path, flags | os.O_CREAT, FILE_MODE)
