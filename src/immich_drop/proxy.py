"""`ForwardedHeaders`: trust `X-Forwarded-*` only from TRUSTED_PROXIES.

From a trusted peer, `X-Forwarded-For` (the nearest untrusted address), `-Proto` and `-Host` are
applied to the ASGI scope (client, scheme, Host header), so every URL the app builds, tus
`Location` included, is the one the browser used. From anyone else they are removed before any
other code sees them.
"""

from __future__ import annotations

import ipaddress


def address_key(host: str) -> str:
    """The address a per-address limit counts: an IPv6 address by its /64 (one host gets a whole /64
    to pick from), an IPv4-mapped one as IPv4, anything else (a name, a socket) as it is."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return host


def trusted(host: str, networks: tuple) -> bool:
    """Whether `host` (an IPv4-mapped IPv6 address as its IPv4) is in one of `networks`."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a unix socket or a name: not an address we were told to trust
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in net for net in networks)


FORWARDED = (b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port", b"forwarded")


class ForwardedHeaders:
    def __init__(self, app, trusted: tuple = ()):
        self.app = app
        self.trusted = trusted

    def _is_trusted(self, host: str | None) -> bool:
        return bool(host and self.trusted) and trusted(host, self.trusted)

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        client = scope.get("client")
        headers = [(k, v) for k, v in scope.get("headers", [])]
        found = {k: v.decode("latin-1") for k, v in headers if k in FORWARDED}
        kept = [(k, v) for k, v in headers if k not in FORWARDED]
        scope = dict(scope)
        if found and self._is_trusted(client[0] if client else None):
            proto = found.get(b"x-forwarded-proto", "").split(",")[0].strip().lower()
            # Traefik says "wss" (or "ws") for a WebSocket: the guest's __Host- cookie is read only
            # over a secure scheme, so that channel lost its session (review)
            proto = {"ws": "http", "wss": "https"}.get(proto, proto)
            if proto in ("http", "https"):
                scope["scheme"] = proto if scope["type"] == "http" else ("wss" if proto == "https" else "ws")
            host = found.get(b"x-forwarded-host", "").split(",")[0].strip()
            if host:
                kept = [(k, v) for k, v in kept if k != b"host"] + [(b"host", host.encode("latin-1"))]
            hops = [h.strip() for h in found.get(b"x-forwarded-for", "").split(",") if h.strip()]
            while hops and self._is_trusted(hops[-1]):
                hops.pop()
            if hops:
                scope["client"] = (hops[-1], 0)
        scope["headers"] = kept
        return await self.app(scope, receive, send)
