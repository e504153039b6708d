"""Which requests reach ``hifigan serve`` and ``hifigan listen``: one ASGI middleware for both.

:class:`WebGuard` wraps either application and, before anything else runs, refuses

* a request whose ``Host`` header does not name an address being served (403): a web page on
  another site that re-points its own DNS name at the service's address (DNS rebinding)
  sends its own name there, so it can neither drive the service nor read its answers;
* a WebSocket handshake or a state-changing request (``POST``, ``PUT``, ``PATCH``,
  ``DELETE``) whose ``Origin`` header is present and is not the service's own origin nor one
  allowed with ``--allow-origin`` (403; a WebSocket is refused before it is accepted).
  Requests without ``Origin`` (curl, scripts) pass: only browsers send it, and they always do
  on these requests;
* a request body over the server's bound (413): refused from ``Content-Length`` before any
  of it is read, else counted as it arrives and cut as soon as it passes the bound.

A client that disconnects during its upload is logged as one line and answered (for the
metrics and the access log) with status 499, as nginx does, never as a server error.

The served names (:class:`WebPolicy`): for a loopback address (``127.0.0.1``, ``::1``,
``localhost``) the loopback names; for a specific address, that address; for a wildcard
address (``0.0.0.0``, ``::``) the machine's addresses are not known in advance, so any IP
address is accepted (a literal address cannot be re-pointed by DNS) besides the loopback names
and the host name. The port in ``Host`` must be the port the connection arrived on.
``--allow-host NAME`` (any port) or ``NAME:PORT`` adds names (repeatable; ``*``: any).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import HiFiGANError

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
CLIENT_GONE = 499  # nginx's status for a request whose client left before the answer
ANY = "*"
_JSON_HEADERS = [
    (b"content-type", b"application/json"),
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
]


def parse_host(value: str) -> tuple[str, int | None] | None:
    """A ``Host`` header (``name``, ``name:port``, ``[v6]``, ``[v6]:port``) -> the lower-case
    name without brackets or a trailing dot, and the port (None when absent); None when
    malformed."""
    value = value.strip().lower()
    if not value or any(c in value for c in " /\\@?#,\t") or not value.isascii():
        return None
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or not _is_ip(name) or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:] if rest else None
    elif value.count(":") > 1:
        return None  # an IPv6 address must be bracketed in Host
    else:
        name, colon, port_text = value.partition(":")
        port_text = port_text if colon else None
    if port_text is not None and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        return None
    if name.endswith("."):
        name = name[:-1]  # the fully qualified form of the same name
    if not name or name.endswith("."):
        return None
    return name, None if port_text is None else int(port_text)


def parse_origin(value: str) -> tuple[str, str, int] | None:
    """An ``Origin`` header -> ``(scheme, host, port)`` with the scheme's default port filled
    in; None for ``null``, a non-web scheme or anything malformed."""
    scheme, sep, rest = value.strip().lower().partition("://")
    if not sep or scheme not in ("http", "https"):
        return None
    parsed = parse_host(rest)
    if parsed is None:
        return None
    name, port = parsed
    return scheme, name, DEFAULT_PORTS[scheme] if port is None else port


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def body_limit_text(limit: int) -> str:
    """A body bound in the words of the 413 message: MB as ``--max-body-mb`` gives it, KiB
    for the small fixed bounds (the listening test's 64 KiB)."""
    if limit < 2**20 // 10 and limit % 1024 == 0:
        return f"{limit // 1024} KiB"
    return f"{round(limit / 2**20, 4):g} MB"


class WebPolicy:
    """The served names, the origins allowed besides the service's own, and the body bound.

    Args:
        host: the address the server listens on (``--host``).
        allow_hosts: more ``Host`` values to accept: ``NAME`` (any port), ``NAME:PORT`` or
            ``*`` (any Host at all).
        allow_origins: more ``Origin`` values to accept (``scheme://host[:port]``, or ``*``).
        max_body_bytes: the largest request body.

    Raises:
        HiFiGANError: an ``--allow-host`` or ``--allow-origin`` value that is not one.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        allow_hosts: Iterable[str] = (),
        allow_origins: Iterable[str] = (),
        max_body_bytes: int = 1 << 20,
    ) -> None:
        self.host = host
        self.max_body_bytes = int(max_body_bytes)
        self.wildcard = host.strip("[]") in WILDCARD_HOSTS
        bare = host.strip("[]").lower()
        if self.wildcard:
            self.hostname = socket.gethostname().lower().rstrip(".")
            names = {*LOOPBACK_NAMES, self.hostname}
        elif _is_loopback(bare):
            self.hostname = None
            names = {*LOOPBACK_NAMES, bare}
        else:
            self.hostname = None
            names = {bare}
        self.names = frozenset(names)
        self.any_host = False
        self.extra_names: set[str] = set()  # any port
        self.extra_hosts: set[tuple[str, int]] = set()  # that port only
        for value in allow_hosts:
            if value.strip() == ANY:
                self.any_host = True
                continue
            parsed = parse_host(value)
            if parsed is None:
                raise HiFiGANError(
                    f"--allow-host {value!r} is not a host name (NAME or NAME:PORT, e.g. "
                    "vocoder.example.org or localhost:9000)"
                )
            if parsed[1] is None:
                self.extra_names.add(parsed[0])
            else:
                self.extra_hosts.add((parsed[0], parsed[1]))
        self.any_origin = False
        self.origins: set[tuple[str, str, int]] = set()
        for value in allow_origins:
            if value.strip() == ANY:
                self.any_origin = True
                continue
            parsed_origin = parse_origin(value)
            if parsed_origin is None:
                raise HiFiGANError(
                    f"--allow-origin {value!r} is not an origin (scheme://host[:port], e.g. "
                    "https://tts.example.org)"
                )
            self.origins.add(parsed_origin)

    def host_allowed(self, host: tuple[str, int | None], port: int | None, scheme: str) -> bool:
        """Whether a parsed ``Host`` names this service, reached on local ``port``."""
        name, given = host
        if self.any_host or name in self.extra_names or (name, given) in self.extra_hosts:
            return True
        if name not in self.names and not (self.wildcard and _is_ip(name)):
            return False
        if port is None:
            return True  # an ASGI server that does not report its socket: the name decides
        return (given if given is not None else DEFAULT_PORTS.get(scheme, 80)) == port

    def origin_allowed(self, origin: str, host: tuple[str, int | None] | None) -> bool:
        """Whether a page of ``origin`` may drive the service: its own origin (the one named
        by the request's ``Host``, over http or https) or one allowed with --allow-origin."""
        if self.any_origin:
            return True
        parsed = parse_origin(origin)
        if parsed is None:
            return False
        if parsed in self.origins:
            return True
        if host is None:
            return False
        scheme, name, port = parsed
        given_name, given_port = host
        if name != given_name:
            return False
        # no port in Host: the page's origin uses its scheme's default port (a TLS proxy)
        return port == DEFAULT_PORTS[scheme] if given_port is None else port == given_port

    def describe(self) -> str | None:
        """What a wildcard address accepts, for the start-up output (None otherwise)."""
        if not self.wildcard:
            return None
        names = f"'{self.hostname}', " if self.hostname else ""
        return (
            f"listening on all interfaces ({self.host or '0.0.0.0'}): requests must name this "
            f"machine by an IP address, as {names}'localhost' or a name given with --allow-host; "
            "pages of other sites are refused unless given with --allow-origin"
        )


# ---------------------------------------------------------------------- ASGI helpers
def _header(scope: dict, name: bytes) -> list[str]:
    return [v.decode("latin1") for k, v in scope.get("headers", ()) if k.lower() == name]


async def send_json_error(
    send, status: int, message: str, headers: dict[str, str] | None = None
) -> None:
    """An HTTP answer ``{"error": message}`` with ``status``."""
    body = json.dumps({"error": message}).encode()
    extra = [(k.lower().encode("latin1"), v.encode("latin1")) for k, v in (headers or {}).items()]
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [*_JSON_HEADERS, (b"content-length", str(len(body)).encode()), *extra],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})


async def deny(
    scope: dict, receive, send, status: int, message: str, headers: dict | None = None
) -> None:
    """Refuse an HTTP request or a WebSocket handshake (before accepting it) with ``status``
    and a JSON error; without the ASGI server's ``websocket.http.response`` extension the
    handshake is closed with 1008, which the server answers with 403."""
    if scope["type"] == "http":
        await send_json_error(send, status, message, headers)
        return
    await receive()  # websocket.connect
    if "websocket.http.response" in scope.get("extensions", {}):

        async def send_ws(message: dict) -> None:
            await send({**message, "type": "websocket." + message["type"]})

        await send_json_error(send_ws, status, message, headers)
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})


@dataclass
class _Upload:
    """What the guard saw of one request body."""

    received: int = 0
    complete: bool = False
    refused: bool = False  # over the bound: 413 sent, the rest is not read
    client_left: bool = False  # the client disconnected before the body ended
    started: bool = False  # a response was started (by the app or the guard)


class WebGuard:
    """The ASGI middleware of :class:`WebPolicy` (see the module docstring).

    Args:
        app: the application to guard.
        policy: what to accept.
        logger: where a client that left during its upload is reported, one line each.
    """

    def __init__(self, app, policy: WebPolicy, logger: logging.Logger | None = None) -> None:
        self.app = app
        self.policy = policy
        self.log = logger or logging.getLogger("hifigan.serve")

    def refusal(self, scope: dict) -> tuple[int, str] | None:
        """``(status, message)`` when the request may not reach the application."""
        policy = self.policy
        hosts = _header(scope, b"host")
        host = None
        if len(hosts) > 1:
            return 400, "more than one Host header"
        if hosts:
            host = parse_host(hosts[0])
            if host is None:
                return 400, f"malformed Host header {hosts[0][:80]!r}"
            server = scope.get("server")
            port = server[1] if server and len(server) > 1 else None
            scheme = scope.get("scheme", "http")
            if not policy.host_allowed(host, port, scheme):
                return 403, (
                    f"Host {hosts[0][:80]!r} is not an address of this service (start it with "
                    "--allow-host NAME to accept another name)"
                )
        if scope["type"] == "websocket" or scope.get("method", "GET") in STATE_CHANGING:
            origins = _header(scope, b"origin")
            if len(origins) > 1 or (origins and not policy.origin_allowed(origins[0], host)):
                shown = origins[0][:80] if origins else ""
                return 403, (
                    f"requests from pages of {shown!r} are refused (start the service with "
                    "--allow-origin ORIGIN to allow a site)"
                )
        if scope["type"] == "http":
            lengths = _header(scope, b"content-length")
            declared = lengths[0].strip() if lengths else ""
            if declared.isdigit() and int(declared) > policy.max_body_bytes:
                return 413, self.too_large()
        return None

    def too_large(self) -> str:
        return (
            "request body is over this server's limit of "
            f"{body_limit_text(self.policy.max_body_bytes)}"
        )

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refused = self.refusal(scope)
        if refused is not None:
            await deny(scope, receive, send, *refused)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        await self._http(scope, receive, send)

    async def _http(self, scope, receive, send) -> None:
        upload = _Upload()
        limit = self.policy.max_body_bytes

        async def counted_receive():
            if upload.refused or upload.client_left:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                upload.received += len(message.get("body", b""))
                upload.complete = not message.get("more_body", False)
                if upload.received > limit:
                    upload.refused = True
                    if not upload.started:
                        upload.started = True
                        await send_json_error(send, 413, self.too_large())
                    return {"type": "http.disconnect"}
            elif message["type"] == "http.disconnect" and not upload.complete:
                upload.client_left = True
            return message

        async def guarded_send(message) -> None:
            if upload.refused or upload.client_left:
                return  # the answer is decided (413) or nobody is listening (499)
            if message["type"] == "http.response.start":
                upload.started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            # an application failing on a body that was cut (ClientDisconnect, truncated
            # JSON, ...) has nothing to answer: the answer is already decided
            if not (upload.refused or upload.client_left):
                raise
        if upload.client_left:
            client = scope.get("client") or ("?", 0)
            declared = _header(scope, b"content-length")
            self.log.warning(
                "%s %s: client %s disconnected during the upload (%d of %s bytes); answered %d",
                scope.get("method"),
                scope.get("path"),
                f"{client[0]}:{client[1]}",
                upload.received,
                declared[0] if declared else "unknown",
                CLIENT_GONE,
            )
            if not upload.started:
                upload.started = True
                await send_json_error(send, CLIENT_GONE, "client disconnected during the upload")


__all__ = [
    "CLIENT_GONE",
    "WebGuard",
    "WebPolicy",
    "body_limit_text",
    "deny",
    "parse_host",
    "parse_origin",
    "send_json_error",
]
