"""Where webhooks may go: public addresses only, unless the operator allows private ones.

A destination URL is set by a tenant, and the server POSTs to it and keeps the first
2 KB of the reply, readable through the API. Without a guard a tenant could point a
destination at the server's own network (a cloud metadata address, an admin port on
127.0.0.1, a database on 10.0.0.0/8) and read what answers. So every connection a
webhook opens is checked where it is made: the host name is resolved once, every
address it resolves to must be public (``ipaddress``'s ``is_global``), and the
connection goes to that checked address (a name cannot resolve to a public address for
the check and a private one for the connection). Redirects are never followed.

``QUANYU_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true`` lifts the rule for a server whose
receivers live on its own network (and for local development and tests).
"""

from __future__ import annotations

import ipaddress
import socket
import typing
from urllib.parse import urlsplit

import httpcore
import httpx

from quanyu.errors import ValidationFailed

ALLOW_SETTING = "QUANYU_WEBHOOK_ALLOW_PRIVATE_NETWORKS"
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class PrivateAddress(Exception):
    """A webhook host that is, or resolves to, an address that is not public."""

    def __init__(self, host: str, address: str) -> None:
        self.host = host
        self.address = address
        shown = host if host == address else f"{host} resolves to {address}, which"
        super().__init__(
            f"{shown} is not a public address: webhooks go to public addresses only. Use a"
            f" public URL, or set {ALLOW_SETTING}=true on the server if its receivers live"
            " on its own network."
        )


def is_public(address: Address) -> bool:
    """Whether ``address`` is routable on the internet (IPv4-mapped IPv6 judged as IPv4)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse, when a destination is created, a URL whose host is plainly not public.

    Only what needs no DNS is judged here (an address, ``localhost``); names are checked
    at every connection, since what they resolve to can change.

    Raises:
        ValidationFailed: the host is a private, loopback, link-local or reserved address.
    """
    if allow_private:
        return
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    address = _literal(host)
    local = host == "localhost" or host.endswith(".localhost")
    if local or (address is not None and not is_public(address)):
        shown = str(address) if address is not None else host
        raise ValidationFailed(f"The destination URL {url}: {PrivateAddress(host, shown)}")


class GuardedBackend(httpcore.SyncBackend):
    """Opens TCP connections only to public addresses, to the address it checked."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            raise httpcore.ConnectError(f"cannot resolve {host}: {e}") from e
        addresses = [str(info[4][0]) for info in infos]
        for a in addresses:
            if not is_public(ipaddress.ip_address(a.split("%")[0])):
                raise PrivateAddress(host, a)
        return super().connect_tcp(addresses[0], port, timeout, local_address, socket_options)


def client(*, timeout: float, headers: dict[str, str], allow_private: bool) -> httpx.Client:
    """The HTTP client webhooks are sent with (guarded unless ``allow_private``).

    Guarded, it takes no proxy from the environment (the proxy would make the
    connection the guard cannot see); either way redirects are not followed.
    """
    if allow_private:
        return httpx.Client(timeout=timeout, headers=headers)
    transport = httpx.HTTPTransport(trust_env=False)
    limits = httpx.Limits()
    transport._pool = httpcore.ConnectionPool(  # the default pool with a guarded backend
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedBackend(),
    )
    return httpx.Client(timeout=timeout, headers=headers, transport=transport, trust_env=False)
