"""Access control of the services: API keys, result ownership, cross-origin refusal, rate limits.

**API keys** (bearer tokens). A service configured with keys (``GESCO_*_API_KEYS`` or
``..._API_KEYS_FILE``, see ``docs/security.md``) wants ``Authorization: Bearer <key>`` on
every HTTP request except the probes, the metrics and the API docs (:data:`OPEN_PATHS`),
and ``authorization: Bearer <key>`` metadata on every gRPC call except the health
service. Without keys, nothing is checked (the default, for a loopback-only stack).

Only hashes are kept: a key's **identity** is the first 32 hex digits of its SHA-256
(:func:`key_identity`). The sender passes the identity of the client's key along with the
frame (gRPC metadata ``x-gesco-owner``, through the channel, to the receiver), the
receiver stores it with the job, and its REST API then shows a job only to a request
whose key has that identity (403 otherwise). A sender and a receiver that share the
client keys therefore agree on who owns what without either storing the key.

**Cross-origin form POSTs.** A web page on any site can make a browser POST a
multipart form to ``http://127.0.0.1:8000/transmit`` (no preflight). Browsers mark such
requests with ``Origin`` (and ``Sec-Fetch-Site``); :class:`HttpGuard` refuses an unsafe
method (POST, PUT, PATCH, DELETE) whose ``Origin`` is not trusted: the service's own
origin on a loopback name or a configured public URL, and the configured extra origins
(the sender trusts the receiver's origin, where a result viewer page may be served).
A request without ``Origin`` and ``Sec-Fetch-Site`` (curl, httpx, ``gesco send``) is not
a browser's cross-site request and passes. The host is checked, not only matched with
``Origin``, so that a DNS-rebinding page (``Origin: http://evil.example:8000``, ``Host:
evil.example:8000``) is refused as well.

**Rate limits**: :class:`gesco_net.ratelimit.RateLimiter` per client: the key's
identity with keys on, else the peer's IP address.

HTTP statuses: 401 (no or unknown key, with ``WWW-Authenticate: Bearer``), 403
(cross-origin, or another client's job), 429 (with ``Retry-After``). gRPC: missing or
unknown key -> ``UNAUTHENTICATED``; an authenticated caller that may not do what it asks
(deliver a job id that another owner holds) -> ``PERMISSION_DENIED``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import grpc

from gesco.errors import GescoInputError
from gesco_net.ratelimit import RateLimiter, retry_after_header

#: metadata keys on gRPC calls
AUTH_METADATA = "authorization"
OWNER_METADATA = "x-gesco-owner"
#: shortest key accepted in the settings (a 16-character key from a 62-letter alphabet is ~95 bits)
MIN_KEY_LENGTH = 16
#: paths open without a key: probes, metrics, API docs, ``/`` (a redirect to a page)
OPEN_PATHS = frozenset({"/", "/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
#: host names that only this machine can reach
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: what an owner identity looks like (32 hex digits)
IDENTITY_PATTERN = re.compile(r"\A[0-9a-f]{32}\Z")
#: the gRPC health service (always open, so that probes work without a key)
HEALTH_PREFIX = "/grpc.health.v1.Health/"


class ConfigError(GescoInputError):
    """A security setting that cannot be used (short key, unreadable file, bad URL)."""


def key_identity(key: str) -> str:
    """Identity of an API key: the first 32 hex digits (128 bits) of ``SHA-256(key)``."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def read_keys(keys: str | None = None, keys_file: Path | str | None = None) -> list[str]:
    """API keys from a comma-separated setting and / or a file (one per line, ``#`` comments).

    Raises:
        ConfigError: the file cannot be read, or a key is shorter than :data:`MIN_KEY_LENGTH`
            or has white space inside.
    """
    found = [k.strip() for k in (keys or "").split(",") if k.strip()]
    if keys_file:
        try:
            text = Path(keys_file).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read the API key file {keys_file}: {e}") from None
        found += [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    for k in found:
        if len(k) < MIN_KEY_LENGTH or any(c.isspace() for c in k):
            raise ConfigError(f"an API key must have at least {MIN_KEY_LENGTH} characters and no white space "
                              f"(one of the configured keys has {len(k)}); `gesco certs --api-key` prints a good one")
    return found


def read_secret(value: str | None = None, value_file: Path | str | None = None) -> str | None:
    """One secret (a client's key for the next hop) from a setting or a file (its first line)."""
    keys = read_keys(value, value_file)
    if len(keys) > 1:
        raise ConfigError("expected one key for the next service, found several")
    return keys[0] if keys else None


class ApiKeys:
    """The accepted keys, kept as identities only.

    ``ApiKeys([])`` is disabled: :attr:`enabled` is false and every request passes.
    """

    def __init__(self, keys: Iterable[str]) -> None:
        self._identities = frozenset(key_identity(k) for k in keys)

    @property
    def enabled(self) -> bool:
        return bool(self._identities)

    def identify(self, token: str | None) -> str | None:
        """The identity of ``token`` when it is an accepted key, else ``None``.

        The comparison is on SHA-256 digests, so the lookup time says nothing about how
        close a guess is to a key.
        """
        if not token:
            return None
        identity = key_identity(token)
        return identity if identity in self._identities else None


def bearer_token(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value (``None`` when absent or another scheme)."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def bearer_metadata(key: str | None, owner: str | None = None) -> list[tuple[str, str]]:
    """gRPC call metadata: the caller's key and the owner identity of the job (each when given)."""
    md = []
    if key:
        md.append((AUTH_METADATA, f"Bearer {key}"))
    if owner:
        md.append((OWNER_METADATA, owner))
    return md


def metadata_value(context: grpc.ServicerContext, name: str) -> str | None:
    """The first value of metadata ``name`` of a call (``None`` when absent)."""
    metadata = getattr(context, "invocation_metadata", None)  # absent on hand-made test contexts
    for k, v in (metadata() if metadata else None) or ():
        if k == name:
            return v
    return None


def owner_from_metadata(context: grpc.ServicerContext) -> str | None:
    """The ``x-gesco-owner`` identity of a call, checked (``INVALID_ARGUMENT`` when malformed)."""
    owner = metadata_value(context, OWNER_METADATA)
    if owner is not None and not IDENTITY_PATTERN.match(owner):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"metadata {OWNER_METADATA} must be 32 lower-case hex digits")
    return owner


def warn_if_exposed(service: str, host: str, keys: ApiKeys, logger, published_on: str = "") -> bool:
    """Log a warning when ``service`` listens beyond loopback without keys; return whether it did.

    In a container the service listens on ``0.0.0.0`` but is reached through the ports the
    runtime publishes: ``published_on`` (the ``GESCO_*_PUBLISHED_ON`` setting, which
    docker-compose.yml sets to the address its ports are published on, ``none`` for a
    service that publishes none) on a loopback address or ``none`` turns the warning into
    an info line.
    """
    if keys.enabled or host in LOOPBACK_HOSTS:
        return False
    published = published_on.strip()
    if published in LOOPBACK_HOSTS or published == "none":
        where = "not published outside its network" if published == "none" else f"published on {published} only"
        logger.info("%s listens on %s without API keys, %s", service, host, where)
        return False
    logger.warning("%s listens on %s without API keys: anyone who reaches this port is a client "
                   "(see docs/security.md)", service, host)
    return True


# --------------------------------------------------------------------------- origins
def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of an http(s) URL, lower-case, default ports dropped.

    Raises:
        ConfigError: not an http(s) URL with a host.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"expected an http(s) URL, got {url!r}")
    return _origin(parts.scheme, parts.hostname, parts.port)


def _origin(scheme: str, hostname: str, port: int | None) -> str:
    host = f"[{hostname}]" if ":" in hostname else hostname
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host.lower()}" + (f":{port}" if port and port != default else "")


def with_loopback_aliases(origin: str) -> list[str]:
    """``origin`` and, when its host is a loopback name, the same origin under the other loopback names."""
    parts = urlsplit(origin)
    if (parts.hostname or "") not in LOOPBACK_HOSTS:
        return [origin]
    return [_origin(parts.scheme, h, parts.port) for h in sorted(LOOPBACK_HOSTS)]


def parse_origins(value: str | None) -> list[str]:
    """Comma-separated origins (or URLs) of a setting, normalised, with loopback aliases."""
    out: list[str] = []
    for item in (value or "").split(","):
        if item.strip():
            out += with_loopback_aliases(origin_of(item))
    return out


def _request_origin(scope: dict) -> str | None:
    """The origin a request was addressed to (its scheme and Host header), when the host is well-formed."""
    host = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"host"), None)
    if not host:
        return None
    try:
        parts = urlsplit(f"{scope.get('scheme', 'http')}://{host}")
        return _origin(parts.scheme, parts.hostname or "", parts.port) if parts.hostname else None
    except ValueError:
        return None


# --------------------------------------------------------------------------- HTTP
@dataclass
class GuardConfig:
    """What :class:`HttpGuard` enforces.

    Attributes:
        keys: accepted API keys (disabled: no key needed).
        trusted_origins: origins allowed to POST from a browser besides the service's
            own origin on a loopback name.
        rate_limiter: per-client limiter of ``rate_limited`` requests (``None``: no limit).
        rate_limited: ``(method, path)`` pairs that take a token.
        open_paths: paths served without a key.
        open_prefixes: path prefixes served without a key (e.g. a static page).
        rate_limit_all: every request outside the open paths takes a token (besides ``rate_limited``).
    """

    keys: ApiKeys = field(default_factory=lambda: ApiKeys([]))
    trusted_origins: frozenset[str] = frozenset()
    rate_limiter: RateLimiter | None = None
    rate_limited: frozenset[tuple[str, str]] = frozenset()
    open_paths: frozenset[str] = OPEN_PATHS
    open_prefixes: tuple[str, ...] = ()
    rate_limit_all: bool = False


def client_identity(request) -> str | None:
    """The API-key identity of an HTTP request (``None`` when keys are off)."""
    return getattr(request.state, "client_identity", None)


class HttpGuard:
    """ASGI middleware: cross-origin refusal, then API key, then rate limit (see the module doc).

    Sets ``request.state.client_identity`` (the key's identity, ``None`` with keys off).
    """

    def __init__(self, app, config: GuardConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._check(scope)
        if refusal is not None:
            status, detail, headers = refusal
            await _send_json(send, status, {"detail": detail}, headers)
            return
        await self.app(scope, receive, send)

    def _check(self, scope) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        cfg = self.config
        method, path = scope["method"], scope["path"]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}
        if method in UNSAFE_METHODS:
            why = self._cross_origin(scope, headers)
            if why:
                return 403, why, []
        identity = None
        if method == "OPTIONS":  # CORS preflights never carry credentials; they reach no handler
            return None
        is_open = path in cfg.open_paths or path.startswith(cfg.open_prefixes)
        if cfg.keys.enabled and not is_open:
            if sum(1 for k, _ in scope.get("headers", ()) if k.lower() == b"authorization") > 1:
                return 400, "send one Authorization header, not several", []
            token = bearer_token(headers.get("authorization"))
            identity = cfg.keys.identify(token)
            if identity is None:
                what = "no API key was sent" if token is None else "the API key is not valid"
                return 401, f"{what}: send 'Authorization: Bearer <key>'", [(b"www-authenticate", b'Bearer realm="gesco"')]
        scope.setdefault("state", {})["client_identity"] = identity
        if cfg.rate_limiter is not None and ((method, path) in cfg.rate_limited or (cfg.rate_limit_all and not is_open)):
            client = identity or (scope.get("client") or ("unknown", 0))[0]
            wait = cfg.rate_limiter.take(client)
            if wait is not None:
                limit = f"{cfg.rate_limiter.rate:g} per second, bursts of {cfg.rate_limiter.burst}"
                return 429, f"too many requests from this client (limit {limit}); retry after {wait:.2f} s", \
                    [(b"retry-after", retry_after_header(wait).encode())]
        return None

    def _cross_origin(self, scope, headers: dict[str, str]) -> str | None:
        """Why an unsafe request is refused as cross-origin, or ``None``."""
        origin = headers.get("origin")
        fetch_site = headers.get("sec-fetch-site")
        if origin is None:
            if fetch_site in ("cross-site", "same-site"):
                return f"cross-origin request refused (Sec-Fetch-Site: {fetch_site})"
            return None
        try:
            normalised = origin_of(origin)
        except ConfigError:
            return f"cross-origin request refused (Origin: {origin[:100]!r})"
        if normalised in self.config.trusted_origins:
            return None
        own = _request_origin(scope)
        if own is not None and normalised == own and urlsplit(own).hostname in LOOPBACK_HOSTS:
            return None
        return (f"cross-origin request refused: Origin {normalised} is not trusted "
                "(see the allowed_origins setting in docs/security.md)")


async def _send_json(send, status: int, body: dict, headers: list[tuple[bytes, bytes]]) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": data})


# --------------------------------------------------------------------------- gRPC
class GrpcKeyInterceptor(grpc.ServerInterceptor):
    """Refuse gRPC calls without an accepted key (``UNAUTHENTICATED``); health checks pass."""

    def __init__(self, keys: ApiKeys) -> None:
        self.keys = keys

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method or ""
        if not self.keys.enabled or method.startswith(HEALTH_PREFIX):
            return continuation(handler_call_details)
        md = dict(handler_call_details.invocation_metadata or ())
        token = bearer_token(md.get(AUTH_METADATA))
        if self.keys.identify(token) is not None:
            return continuation(handler_call_details)
        what = "no API key was sent" if token is None else "the API key is not valid"
        message = f"{what}: send metadata 'authorization: Bearer <key>'"

        def deny(_request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

        return grpc.unary_unary_rpc_method_handler(deny, request_deserializer=lambda b: b)
