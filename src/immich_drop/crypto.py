"""Secrets at rest, password hashes and tokens.

- `Box(secret)`: encrypts values stored in the database (minted Immich API keys, Immich session tokens,
  invite tokens) with Fernet, under a key derived from SESSION_SECRET by HKDF. `open` returns None
  for anything it cannot decrypt (e.g. after the secret changed), which callers treat as "sign in again".
- `hash_password` / `verify_password`: scrypt (n=2^15, r=8, p=1) with a random salt, compared in
  constant time. Slow on purpose: call them in a thread.
- `Hasher(workers, waiting)`: the threads password hashing runs on, apart from the pool every database
  query and file write uses; `run(fn, ...)` raises `HasherBusy` at once when `workers + waiting` are
  already in hand, so a burst of guesses is refused instead of queued.
- `new_token()`: 128+ bits from `secrets`; `token_hash(t)`: its SHA-256, which is what the database
  indexes, so looking a token up never compares secrets byte by byte.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

SCRYPT = {"n": 2**15, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024}


class Box:
    def __init__(self, secret: str):
        self._secret = secret
        self._fernet: Any = None  # a cryptography.fernet.Fernet once needed

    def _box(self):
        # `cryptography` is imported at the first secret sealed or opened, not at start-up: 7 MB of
        # resident memory a server taking uploads through its own key only never needs (bench/README.md)
        if self._fernet is None:
            from cryptography.fernet import Fernet
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.kdf.hkdf import HKDF

            key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"immich-drop", info=b"at-rest v1"
                       ).derive(self._secret.encode())
            self._fernet = Fernet(base64.urlsafe_b64encode(key))
        return self._fernet

    def seal(self, value: str) -> str:
        return self._box().encrypt(value.encode()).decode()

    def open(self, sealed: str | None) -> str | None:
        if not sealed:
            return None
        box = self._box()
        from cryptography.fernet import InvalidToken

        try:
            return box.decrypt(sealed.encode()).decode()
        except (InvalidToken, ValueError):
            return None


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt, **SCRYPT)
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        candidate = hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                                   maxmem=SCRYPT["maxmem"])
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(candidate.hex(), digest)


class HasherBusy(Exception):
    """Every hashing slot is taken: refuse the attempt (429) rather than queue it."""


class Hasher:
    def __init__(self, workers: int = 2, waiting: int = 2):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="password-hash")
        self.capacity, self.in_hand = workers + waiting, 0

    async def run(self, fn, *args, refuse: bool = True):
        """`fn(*args)` on a hashing thread; with `refuse`, HasherBusy when all slots are in hand."""
        if refuse and self.in_hand >= self.capacity:
            raise HasherBusy()
        self.in_hand += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            self.in_hand -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def new_token(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
