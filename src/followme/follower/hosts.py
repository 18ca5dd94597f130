"""Which requests the follower's web endpoints serve (Socket.IO and the live page alike).

A request is served when its Host header names this machine's loopback (127.0.0.1, ::1,
localhost), the address listened on, or a name the operator allowed (``--allow-host``): a web
page cannot reach the follower through DNS rebinding, which an Origin check alone lets through
(the page's Origin and Host then agree). A request that carries an Origin must also come from
the page's own origin: its host and port are the Host header's.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def host_name(header: str) -> str:
    """A Host header's name, lower case, without port, brackets or a final dot:
    ``"[::1]:4567"`` -> ``"::1"``, ``"LocalHost:80"`` -> ``"localhost"``."""
    h = header.strip().lower()
    if h.startswith("["):
        end = h.find("]")
        h = h[1:end] if end > 0 else h
    elif h.count(":") == 1:  # name:port; more colons is a bare IPv6 address
        h = h.partition(":")[0]
    return h.rstrip(".")


def is_loopback(name: str) -> bool:
    if name == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


def host_allowed(header: str | None, bound: str, allow: tuple[str, ...] = ()) -> bool:
    """Whether a request's Host header names this follower: a loopback name or address, the
    address listened on (``bound``), or one of ``allow`` (names, any port; "*": any Host)."""
    if "*" in allow:
        return True
    if not header:
        return False
    name = host_name(header)
    return is_loopback(name) or name == host_name(bound) or name in {host_name(a) for a in allow}


def origin_allowed(origin: str | None, host: str | None) -> bool:
    """Whether a request's Origin header (absent: not from a page) is the page's own: the same
    host and port as its Host header."""
    if origin is None:
        return True
    if not host:
        return False
    netloc = urlsplit(origin.strip()).netloc.lower().rstrip(".")
    return netloc == host.strip().lower().rstrip(".")


def refusal(host: str | None, origin: str | None, bound: str,
            allow: tuple[str, ...] = ()) -> str | None:
    """Why a request with these Host and Origin headers is refused, or None to serve it."""
    if not host_allowed(host, bound, allow):
        return "Host not accepted"
    if "*" not in allow and not origin_allowed(origin, host):
        return "Origin not accepted"
    return None
