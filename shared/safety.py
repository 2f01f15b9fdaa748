"""Guards for what events and API calls point at: local paths and remote URLs.

``check_source`` is the single entry point; it returns a :class:`MediaSource` or raises
:class:`UnsafeSource` with a message a client can act on.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

Resolver = Callable[[str], list[str]]


class UnsafeSource(ValueError):
    """The path or URL is not allowed; the message says why."""


@dataclass(frozen=True)
class MediaSource:
    kind: str  # "file" or "url"
    location: str  # absolute path, or the URL as given


def system_resolver(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise UnsafeSource(f"cannot resolve host {host!r}: {exc.strerror}") from exc
    except (UnicodeError, ValueError) as exc:  # an IDNA label over 63 characters, an embedded NUL
        raise UnsafeSource(f"host {host!r} is not a valid host name: {exc}") from exc
    return sorted({info[4][0] for info in infos})


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_loopback
        or ip.is_link_local
        or ip.is_private
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def check_url(url: str, allowed_hosts: Iterable[str] = (), resolver: Resolver = system_resolver) -> MediaSource:
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:  # for example an unclosed IPv6 bracket
        raise UnsafeSource(f"URL cannot be parsed: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeSource(f"URL scheme {parts.scheme!r} not allowed; use http or https")
    if not host:
        raise UnsafeSource("URL has no host")
    if parts.username or parts.password:
        raise UnsafeSource("URL must not carry credentials")
    if host.lower() in {h.lower() for h in allowed_hosts}:
        return MediaSource("url", url)
    addresses = resolver(host)
    if not addresses:
        raise UnsafeSource(f"host {host!r} resolves to no address")
    blocked = [a for a in addresses if not is_public_address(a)]
    if blocked:
        raise UnsafeSource(
            f"host {host!r} resolves to non-public address {blocked[0]} "
            "(loopback, link-local, private, multicast and reserved ranges are refused)"
        )
    return MediaSource("url", url)


def _shown(text: str, limit: int = 80) -> str:
    """``text`` for an error message: repr, cut to ``limit`` characters."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


def check_path(relative: str, media_root: Path) -> MediaSource:
    """A path inside ``media_root`` (symlinks resolved), naming an existing regular file.

    Whatever the file system says about a path (a name too long, a symlink loop, a component
    that is not a folder) becomes an :class:`UnsafeSource` with the reason, never another error.
    """
    if "\x00" in relative:
        raise UnsafeSource("path contains a NUL byte")
    try:
        return _check_path(relative, media_root)
    except UnsafeSource:
        raise
    except RuntimeError as exc:  # Path.resolve() on Python < 3.13: "Symlink loop from ..."
        raise UnsafeSource(f"path {_shown(relative)} cannot be resolved: {exc}") from exc
    except OSError as exc:  # ENAMETOOLONG, ELOOP, EACCES, ...
        reason = exc.strerror or type(exc).__name__
        raise UnsafeSource(f"path {_shown(relative)} cannot be used: {reason}") from exc
    except ValueError as exc:
        raise UnsafeSource(f"path {_shown(relative)} cannot be used: {exc}") from exc


def _check_path(relative: str, media_root: Path) -> MediaSource:
    root = media_root.resolve()
    candidate = Path(relative)
    target = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if target != root and root not in target.parents:
        raise UnsafeSource(f"path {_shown(relative)} is outside the media root")
    if not target.is_file():
        raise UnsafeSource(f"path {_shown(relative)} is not a file under the media root")
    if not os.access(target, os.R_OK):
        raise UnsafeSource(f"path {_shown(relative)} is not readable")
    return MediaSource("file", str(target))


def check_source(
    source: str,
    media_root: Path,
    allowed_hosts: Iterable[str] = (),
    resolver: Resolver = system_resolver,
) -> MediaSource:
    if "://" in source:
        return check_url(source, allowed_hosts, resolver)
    return check_path(source, media_root)
