"""Requests to URLs that a user or a bot gave us, without letting them reach into our network.

A URL from outside may name any host: `http://169.254.169.254/` (the metadata server and its
tokens), `https://10.0.0.7/`, a name that resolves to 127.0.0.1, or a public URL that redirects to
one of those. So every request made here:

- takes https only (http only on the local stack, see below), no user:password@ and a host that is
  a DNS name or an IP literal (no `2130706433` or `127.1` shorthand);
- refuses `metadata.google.internal` by name, resolves the host with `resolve()` (the one resolver,
  module-level so tests stub it) and refuses it when ANY of its addresses is not public: loopback,
  private, link-local (169.254.169.254 included), shared (100.64/10), multicast, reserved,
  unspecified, and the IPv4 address inside an IPv4-mapped, 6to4, Teredo or NAT64 IPv6 address;
- connects to the checked address itself (never resolves again, so a DNS answer that changes
  between check and connect cannot move it), while the Host header, TLS SNI and certificate
  verification still use the name;
- follows at most `max_redirects` redirects, each target checked the same way before any
  connection, dropping credentials when the host changes;
- reads at most `max_bytes` and ends within `timeout_s` in total (each socket read is given only
  what is left, so a server dripping bytes cannot stretch it), cut to the request's budget.

The local stack (tests, `make dev`) serves everything on 127.0.0.1: OUTBOUND_ALLOW_LOOPBACK=on
allows loopback addresses (only those: private ones stay refused) and http for callers that pass
`allow_http=True`. The setting is refused at startup under production rules (`settings()` is a
startup section of every function that fetches). `UnsafeUrl` is a refusal made before any
connection; `FetchFailed` is what went wrong after (connection, TLS, time, redirects; `TooLarge`: size).
"""
from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import cast
from urllib.parse import urljoin, urlsplit

from shared import config, faults

REDIRECTS = (301, 302, 303, 307, 308)
BLOCKED_NAMES = ("metadata.google.internal", "metadata")  # the metadata server's names on GCE
CREDENTIAL_HEADERS = ("authorization", "cookie", "proxy-authorization")
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"{_LABEL}(\.{_LABEL})*\.?")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

IP = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutboundError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class UnsafeUrl(OutboundError):
    """The URL is refused before any connection is made (`reason` says why)."""


class FetchFailed(OutboundError):
    """The request was allowed but did not complete: connection, TLS, timeout, size, redirects."""


class TooLarge(FetchFailed):
    """The response is longer than `max_bytes` (nothing more is read)."""


@dataclass(frozen=True)
class Settings:
    allow_loopback: bool


@lru_cache(maxsize=1)
def settings() -> Settings:
    allow = config.env_choice("OUTBOUND_ALLOW_LOOPBACK", "off", ("on", "off")) == "on"
    if allow and not config.get().local:
        raise config.ConfigError("OUTBOUND_ALLOW_LOOPBACK=on is for the local stack only (APP_ENV=local): "
                                 "refusing to start")
    return Settings(allow_loopback=allow)


def reset() -> None:
    settings.cache_clear()


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (`addresses`, all of them public) and what to ask for."""
    url: str
    scheme: str
    host: str  # the name (IDNA, lower case): Host header, SNI and certificate
    port: int
    path: str  # path and query
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    url: str  # after redirects


def resolve(host: str, port: int) -> list[str]:
    """The addresses of `host` (the one resolver; tests stub it)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def _embedded_v4(ip: IP) -> ipaddress.IPv4Address | None:
    if ip.version != 6:
        return None
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]  # the client's address (the server's is checked as part of the whole)
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal(ip: IP) -> str | None:
    """Why connecting to `ip` is refused (None when it is a public address)."""
    inner = _embedded_v4(ip)
    if inner is not None:
        why = refusal(inner)
        if why:
            return f"{why} (inside {ip})"
    if ip.is_loopback:
        return None if settings().allow_loopback else f"{ip} is a loopback address"
    for kind in ("link_local", "private", "multicast", "reserved", "unspecified"):
        if getattr(ip, f"is_{kind}"):
            return f"{ip} is a {kind.replace('_', '-')} address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def _host(raw: str | None) -> str:
    if not raw:
        raise UnsafeUrl("the URL has no host")
    try:
        return str(ipaddress.ip_address(raw.strip("[]")))
    except ValueError:
        pass
    try:
        host = raw.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise UnsafeUrl(f"{raw!r} is not a valid host name") from None
    if not _HOSTNAME.fullmatch(host) or host.rstrip(".").rsplit(".", 1)[-1].isdigit():
        raise UnsafeUrl(f"{raw!r} is not a valid host name")  # 127.1, 2130706433, 0x7f.1: numeric shorthands
    return host.rstrip(".")


def check_url(url: str, *, allow_http: bool = False) -> Target:
    """Parse and resolve `url`; raises UnsafeUrl unless every address it resolves to may be reached."""
    if not isinstance(url, str) or len(url) > 2048 or any(c in url for c in "\r\n\t\x00 "):
        raise UnsafeUrl("not a well-formed URL of at most 2048 characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"not a well-formed URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme == "http":
        if not (allow_http and settings().allow_loopback):
            raise UnsafeUrl("only https URLs are accepted")
    elif scheme != "https":
        raise UnsafeUrl("only https URLs are accepted")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("URLs with credentials (user:password@) are refused")
    host = _host(parts.hostname)
    if host in BLOCKED_NAMES or host.endswith(".internal"):
        raise UnsafeUrl(f"{host} is an internal name")
    port = port or (443 if scheme == "https" else 80)
    try:
        literal = ipaddress.ip_address(host)
        addresses = [str(literal)]
    except ValueError:
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError):
            raise UnsafeUrl(f"{host} does not resolve") from None
    if not addresses:
        raise UnsafeUrl(f"{host} does not resolve")
    checked = []
    for a in addresses:
        ip = ipaddress.ip_address(a.split("%")[0])  # a zone index (fe80::1%eth0) is link-local anyway
        why = refusal(ip)
        if why:
            raise UnsafeUrl(f"{host} resolves to a refused address: {why}" if str(ip) != host else why)
        if str(ip) not in checked:
            checked.append(str(ip))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url=url, scheme=scheme, host=host, port=port, path=path, addresses=tuple(checked))


# Connections that never resolve: to a checked address, each read given only what is left of the deadline.
class _Deadline:
    deadline: float = float("inf")

    def _arm(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("outbound request timed out")
        self.settimeout(left)  # type: ignore[attr-defined]  # mixed into socket classes

    def recv_into(self, *args, **kwargs):
        self._arm()
        return super().recv_into(*args, **kwargs)

    def sendall(self, *args, **kwargs):
        self._arm()
        return super().sendall(*args, **kwargs)


class _Socket(_Deadline, socket.socket):
    pass


class _SSLSocket(_Deadline, ssl.SSLSocket):
    pass


def ssl_context() -> ssl.SSLContext:
    """Certificates are verified against the system's CAs and the host NAME (tests trust their own CA here)."""
    return ssl.create_default_context()


def _connect(target: Target, address: str, deadline: float) -> socket.socket:
    ip = ipaddress.ip_address(address)
    sock = _Socket(socket.AF_INET6 if ip.version == 6 else socket.AF_INET, socket.SOCK_STREAM)
    sock.deadline = deadline
    try:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        sock.connect((address, target.port))
        if target.scheme == "http":
            return sock
        ctx = ssl_context()
        ctx.sslsocket_class = _SSLSocket
        tls = cast(_SSLSocket, ctx.wrap_socket(sock, server_hostname=target.host))  # SNI, certificate: the name
        tls.deadline = deadline
        return tls
    except BaseException:
        sock.close()
        raise


class _Connection(http.client.HTTPConnection):
    """HTTP/1.1 to `target`'s name over a socket already connected to one of its checked addresses."""

    def __init__(self, target: Target, deadline: float):
        super().__init__(target.host, target.port)
        self.default_port = 443 if target.scheme == "https" else 80  # Host: carries the port only if not default
        self._target, self._deadline = target, deadline

    def connect(self) -> None:
        last: BaseException | None = None
        for address in self._target.addresses:
            try:
                self.sock = _connect(self._target, address, self._deadline)
                return
            except ssl.SSLError:
                raise  # the certificate of the name is wrong: another address will not make it right
            except OSError as exc:
                last = exc
        raise last or OSError("no address to connect to")


def _once(target: Target, method: str, body: bytes | None, headers: dict[str, str],
          max_bytes: int, deadline: float) -> tuple[int, dict[str, str], bytes]:
    conn = _Connection(target, deadline)
    try:
        conn.request(method, target.path, body=body, headers=headers)
        resp = conn.getresponse()
        got: dict[str, str] = {}
        for name, value in resp.getheaders():
            key = name.lower()
            got[key] = f"{got[key]}, {value}" if key in got else value
        if resp.status in REDIRECTS:
            return resp.status, got, b""  # the body of a redirect is not read
        length = got.get("content-length", "")
        if length.isdigit() and int(length) > max_bytes:
            raise TooLarge(f"the response has {length} bytes, more than the {max_bytes} allowed")
        data = bytearray()
        while chunk := resp.read(min(65536, max_bytes + 1 - len(data))):
            data += chunk
            if len(data) > max_bytes:
                raise TooLarge(f"the response has more than the {max_bytes} bytes allowed")
        return resp.status, got, bytes(data)
    except OutboundError:
        raise
    except ssl.SSLCertVerificationError as exc:
        raise FetchFailed(f"TLS certificate of {target.host} not accepted: {exc.verify_message}") from exc
    except TimeoutError as exc:
        raise FetchFailed(f"{target.host} did not answer in time") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise FetchFailed(f"request to {target.host} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        conn.close()


def request(method: str, url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None,
            max_bytes: int, timeout_s: float, max_redirects: int = 3, allow_http: bool = False) -> Response:
    """One request to an outside URL (see the module docstring). Raises UnsafeUrl before connecting to
    anything refused, FetchFailed when the request fails; any HTTP status is returned as it is."""
    deadline = time.monotonic() + faults.timeout(timeout_s, "outbound request")
    headers = {"User-Agent": "openclaw-backend", **(headers or {})}
    method = method.upper()
    target = check_url(url, allow_http=allow_http)
    for hop in range(max_redirects + 1):
        status, got, data = _once(target, method, body, headers, max_bytes, deadline)
        location = got.get("location")
        if status not in REDIRECTS or not location:
            return Response(status, got, data, target.url)
        if hop == max_redirects:
            raise FetchFailed(f"more than {max_redirects} redirects")
        nxt = check_url(urljoin(target.url, location), allow_http=allow_http)
        if status == 303 or (status in (301, 302) and method == "POST"):
            method, body = "GET", None  # as browsers do
            headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-length")}
        if (nxt.host, nxt.port, nxt.scheme) != (target.host, target.port, target.scheme):
            headers = {k: v for k, v in headers.items() if k.lower() not in CREDENTIAL_HEADERS}
        target = nxt
    raise AssertionError("unreachable")
