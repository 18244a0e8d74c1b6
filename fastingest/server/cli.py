"""fastingest serve: the ingestion APIs on uvicorn, events into SQLite or NATS.

  fastingest serve                                  # 127.0.0.1:9000, sqlite:fastingest.db
  fastingest serve --token app=s3cret --token web=0ther --store sqlite:/var/lib/events.db
  FASTINGEST_TOKENS="app=s3cret,web=0ther" fastingest serve --host 0.0.0.0
  fastingest serve --workers 4 --store 'nats://127.0.0.1:4222?stream=FASTINGEST'
  fastingest serve --protocol otlp,loki --max-body otlp=128MiB
  fastingest serve --ssl-certfile cert.pem --ssl-keyfile key.pem   # HTTPS

Without any token a random one is created for the source "default" and printed with a
ready curl line. SIGTERM/SIGINT shut down gracefully: no new connections, requests in
flight finish (up to --graceful-timeout), then the store commits what is pending: a
request is only acknowledged (202) after its commit, so nothing acknowledged is lost.
With --workers N a supervisor process forks N workers sharing the port.

Every rejected request is logged (one line on stderr, --log-format text or json);
--access-log logs the others too. GET /metrics answers Prometheus metrics to
--admin-network clients.

Exit status: 1 when the server cannot start (address in use, store unreachable), 2 for
a bad option or configuration (also unreadable TLS files), killed by SIGTERM/SIGINT
after a graceful stop.
"""
from __future__ import annotations

import argparse
import ctypes
import multiprocessing
import os
import re
import secrets
import shlex
import socket
import ssl
import sys
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from ..limits import Limits
from ..protocols import LOOPBACK_NETWORKS, parse_networks
from . import sockets
from .asgi import (DEFAULT_PROTOCOL_LIMITS, MAX_INFLIGHT, PIECE_SIZE, PROTOCOLS, READ_TIMEOUT,
                   create_app)
from .connections import (HEADER_TIMEOUT, MAX_CONNECTIONS, Guard, guarded_protocol,
                          raise_open_file_limit)
from .headcaps import DEFAULT_MAX_HEAD, DEFAULT_MAX_HEADERS, capped_protocol
from .logs import LOG_FORMATS, logging_config
from .metrics import Metrics, sources_of
from .proxy import DEFAULT_TRUSTED, ProxyHeaders, parse_trusted
from .stores import STORE_ENV, redact_url
from .workers import HEARTBEAT_TIMEOUT, STARTUP_TIMEOUT

TOKENS_ENV = "FASTINGEST_TOKENS"
#: The TLS key's password, when not in --ssl-keyfile-password-file (never on the
#: command line, where any local user could read it in the process list).
KEY_PASSWORD_ENV = "FASTINGEST_SSL_KEYFILE_PASSWORD"
DEFAULT_PORT = 9000   # the port of the Samsara examples
DEFAULT_STORE = "sqlite:fastingest.db"
FIRST_EVENT = '{"message":"My first event","nested":{"values":123}}'

_SIZE = re.compile(r"(\d+)\s*([kmg]i?b?|b)?", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_size(text: str) -> int:
    """``20971520``, ``20MiB``, ``20M``, ``512k`` → bytes (binary units)."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 20MiB)")
    return int(match.group(1)) * _UNITS[(match.group(2) or "")[:1].lower()]


def parse_tokens(pairs: Iterable[str]) -> Dict[str, str]:
    """``SOURCE=TOKEN`` pairs → {token: source}; ValueError on a malformed or clashing pair."""
    tokens: Dict[str, str] = {}
    for pair in pairs:
        source, sep, token = pair.strip().partition("=")
        source, token = source.strip(), token.strip()
        if not sep or not source or not token or any(c.isspace() for c in token):
            raise ValueError(f"expected SOURCE=TOKEN, got {pair!r}")
        if tokens.get(token, source) != source:
            raise ValueError(f"token for {source!r} is already the token of {tokens[token]!r}")
        tokens[token] = source
    return tokens


#: ``--protocol`` shorthands.
PROTOCOL_GROUPS = {"all": PROTOCOLS, "both": ("betterstack", "samsara")}
#: Protocols whose requests carry a token (all but Samsara, which is open by default).
TOKEN_PROTOCOLS = ("betterstack", "otlp", "elasticsearch", "loki", "splunk")
_LIMIT_FLAGS = ("max_body", "max_compressed", "max_event")


def parse_protocols(values: Iterable[str]) -> Tuple[str, ...]:
    """``--protocol`` values (each a name, ``all``, ``both``, or a comma list) → names, in
    order, without repeats; ValueError for an unknown one."""
    names: List[str] = []
    for value in values:
        for part in value.split(","):
            part = part.strip().lower()
            if not part:
                continue
            group = PROTOCOL_GROUPS.get(part, (part,))
            for name in group:
                if name not in PROTOCOLS:
                    raise ValueError(f"unknown protocol {part!r}: use "
                                     f"{', '.join(PROTOCOLS)}, all or both")
                if name not in names:
                    names.append(name)
    if not names:
        raise ValueError("--protocol names no protocol")
    return tuple(names)


def _size_setting(text: str) -> Tuple[Optional[str], int]:
    """``SIZE`` or ``PROTOCOL=SIZE`` (one protocol's limit)."""
    name, sep, size = text.partition("=")
    if not sep:
        return None, parse_size(text)
    name = name.strip().lower()
    if name not in PROTOCOLS:
        raise argparse.ArgumentTypeError(f"unknown protocol {name!r} in {text!r}")
    return name, parse_size(size)


def build_limits(args: argparse.Namespace, protocols: Iterable[str]) -> Dict[str, Limits]:
    """Each served protocol's Limits: its defaults, then ``--max-*`` settings without a
    protocol (all protocols), then those naming it."""
    out: Dict[str, Limits] = {}
    for name in protocols:
        values = {flag: getattr(DEFAULT_PROTOCOL_LIMITS[name], flag) for flag in _LIMIT_FLAGS}
        for flag in _LIMIT_FLAGS:
            for target, size in getattr(args, flag, None) or ():
                if target is None:
                    values[flag] = size
            for target, size in getattr(args, flag, None) or ():
                if target == name:
                    values[flag] = size
        out[name] = Limits(max_body=values["max_body"], max_compressed=values["max_compressed"],
                           max_event=values["max_event"],
                           max_depth=DEFAULT_PROTOCOL_LIMITS[name].max_depth)
    return out


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text!r}")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return int(text)


def _piece_size(text: str) -> int:
    size = parse_size(text)
    if not 4096 <= size <= 16 * 1024 * 1024:
        raise argparse.ArgumentTypeError(f"piece size: 4KiB to 16MiB, not {text!r}")
    return size


def _workers(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 256:
        raise argparse.ArgumentTypeError(f"workers: a number from 1 to 256, not {text!r}")
    return int(text)


def _trusted(text: str) -> str:
    try:
        parse_trusted(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _network(text: str) -> str:
    try:
        parse_networks([text])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``serve`` subcommand to the ``fastingest`` command."""
    p = subparsers.add_parser(
        "serve", help="run the ingestion server (Better Stack, Samsara, OTLP/HTTP logs, "
                      "Elasticsearch _bulk, Loki push and Splunk HEC)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    p.add_argument("--ssl-certfile", metavar="PATH",
                   help="serve HTTPS with this certificate chain (PEM)")
    p.add_argument("--ssl-keyfile", metavar="PATH",
                   help="the certificate's private key (PEM; default: in --ssl-certfile)")
    p.add_argument("--ssl-keyfile-password-file", metavar="PATH",
                   help=f"file whose first line is the key's password (or ${KEY_PASSWORD_ENV})")
    p.add_argument("--protocol", action="append", metavar="NAME[,NAME...]",
                   help=f"which APIs to serve, repeatable or comma-separated: "
                        f"{', '.join(PROTOCOLS)}; 'all' (the default: their paths do not "
                        f"clash) or 'both' (betterstack,samsara)")
    p.add_argument("--store", default=os.environ.get(STORE_ENV) or DEFAULT_STORE,
                   help=f"where events go (default ${STORE_ENV}, else {DEFAULT_STORE}; "
                        "sqlite:PATH?synchronous=normal trades power-loss safety for speed; "
                        "nats://HOST:PORT[?stream=NAME&replicas=N&max_age=7d...] for "
                        "NATS JetStream)")
    p.add_argument("--workers", type=_workers, default=1, metavar="N",
                   help="worker processes sharing the port (default 1; each has its own "
                        "store connection)")
    p.add_argument("--worker-timeout", type=_seconds, default=HEARTBEAT_TIMEOUT,
                   metavar="SECONDS",
                   help="with --workers: replace a worker whose event loop sent no heartbeat "
                        f"for this long (default {HEARTBEAT_TIMEOUT:g})")
    p.add_argument("--worker-startup-timeout", type=_seconds, default=STARTUP_TIMEOUT,
                   metavar="SECONDS",
                   help="with --workers: kill a worker that does not listen this long after "
                        "its start, e.g. hung opening its store (default "
                        f"{STARTUP_TIMEOUT:g}; at start the server then exits with status 1)")
    p.add_argument("--token", action="append", default=[], metavar="SOURCE=TOKEN",
                   help=f"accept this Bearer token for SOURCE (repeatable; also ${TOKENS_ENV}="
                        "'src1=tok1,src2=tok2')")
    p.add_argument("--admin-network", action="append", type=_network, metavar="CIDR",
                   help="client network allowed to PUT /v1/api-status and GET /metrics "
                        "(repeatable; default loopback only)")
    p.add_argument("--proxy-headers", action="store_true",
                   help="behind a reverse proxy: take the client address from "
                        "X-Forwarded-For (and the scheme from X-Forwarded-Proto) on "
                        "connections from --forwarded-allow-ips; a trusted proxy that sends "
                        "no X-Forwarded-For leaves the client unknown (never an admin). Off "
                        "by default: the headers are ignored, and so is uvicorn's "
                        "FORWARDED_ALLOW_IPS environment variable")
    p.add_argument("--forwarded-allow-ips", type=_trusted, default=None, metavar="LIST",
                   help=f"comma-separated addresses/CIDRs of the trusted proxies (default "
                        f"{DEFAULT_TRUSTED}; '*' trusts every peer: then any client picks "
                        f"its address); implies --proxy-headers")
    p.add_argument("--samsara-source", default="samsara",
                   help="source name of Samsara events (default samsara)")
    p.add_argument("--samsara-auth", action="store_true",
                   help="require a Bearer token on /v1/events too (stored under its source)")
    p.add_argument("--max-body", type=_size_setting, action="append", metavar="[PROTOCOL=]SIZE",
                   help="decompressed body limit, for every protocol or one (repeatable; "
                        "defaults: betterstack/samsara 20MiB, otlp 64MiB, elasticsearch "
                        "100MiB, loki 100MiB, splunk 800MiB)")
    p.add_argument("--max-compressed", type=_size_setting, action="append",
                   metavar="[PROTOCOL=]SIZE",
                   help="compressed body limit (defaults: betterstack/samsara 10MiB, otlp "
                        "64MiB, elasticsearch 100MiB, loki 100MiB, splunk 800MiB)")
    p.add_argument("--max-event", type=_size_setting, action="append", metavar="[PROTOCOL=]SIZE",
                   help="one event's limit (defaults: betterstack/samsara 1MiB, otlp, "
                        "elasticsearch and splunk 10MiB, loki 256KiB: its line limit)")
    p.add_argument("--max-header-size", type=parse_size, default=DEFAULT_MAX_HEAD,
                   metavar="SIZE", help="request line + header fields, per request: 431 "
                                        "beyond it (default 32KiB)")
    p.add_argument("--max-headers", type=_count, default=DEFAULT_MAX_HEADERS, metavar="N",
                   help=f"header fields per request: 431 beyond it "
                        f"(default {DEFAULT_MAX_HEADERS})")
    p.add_argument("--read-timeout", type=_seconds, default=READ_TIMEOUT, metavar="SECONDS",
                   help=f"408 when no body data came for this long (default {READ_TIMEOUT:g})")
    p.add_argument("--body-timeout", type=_seconds, default=None, metavar="SECONDS",
                   help="408 when a whole body takes longer (default: no limit)")
    p.add_argument("--header-timeout", type=_seconds, default=HEADER_TIMEOUT, metavar="SECONDS",
                   help="close a connection whose request head is not complete this long "
                        f"after it began (default {HEADER_TIMEOUT:g})")
    p.add_argument("--max-connections", type=_count, default=None, metavar="N",
                   help=f"open connections per process (default {MAX_CONNECTIONS}, fewer if the "
                        "open-file limit is lower); beyond it the connection waiting longest "
                        "for its request head is closed, else the new one gets 503")
    p.add_argument("--max-inflight", type=_count, default=MAX_INFLIGHT, metavar="N",
                   help="request bodies read, decoded and stored at once per process "
                        f"(default {MAX_INFLIGHT}); more get 503 + Retry-After before their "
                        "body is read")
    p.add_argument("--piece-size", type=_piece_size, default=PIECE_SIZE, metavar="SIZE",
                   help="decoded body bytes per batch a request hands to the store, every "
                        f"protocol (default {PIECE_SIZE // 1024}KiB; 4KiB to 16MiB): memory "
                        "per request, and how long it keeps the event loop per turn")
    p.add_argument("--graceful-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="on SIGTERM, how long requests in flight may take (default 30)")
    p.add_argument("--log-level", default="info",
                   choices=("critical", "error", "warning", "info", "debug"),
                   help="least severe log lines written (default info: the request lines; "
                        "warning silences them)")
    p.add_argument("--log-format", choices=LOG_FORMATS, default="text",
                   help="log lines as text (default) or one JSON object each")
    p.add_argument("--access-log", action="store_true",
                   help="log every request, not only the rejected ones")
    p.set_defaults(run=run)


def _tokens(args: argparse.Namespace) -> Tuple[Dict[str, str], Optional[str]]:
    pairs: List[str] = [p for p in os.environ.get(TOKENS_ENV, "").split(",") if p.strip()]
    pairs += args.token
    tokens = parse_tokens(pairs)
    created = None
    if not tokens and any(p in TOKEN_PROTOCOLS for p in args.protocols):
        created = secrets.token_urlsafe(18)
        tokens[created] = "default"
    return tokens, created


def _tls(args: argparse.Namespace) -> Dict[str, Any]:
    """uvicorn's TLS options, checked now (ValueError saying why they cannot be used)."""
    certfile = getattr(args, "ssl_certfile", None)
    keyfile = getattr(args, "ssl_keyfile", None)
    password_file = getattr(args, "ssl_keyfile_password_file", None)
    if certfile is None:
        if keyfile or password_file:
            raise ValueError("--ssl-keyfile needs --ssl-certfile")
        return {}
    password = os.environ.get(KEY_PASSWORD_ENV) or None
    if password_file is not None:
        try:
            with open(password_file, encoding="utf-8") as f:
                password = f.readline().rstrip("\r\n")
        except OSError as exc:
            raise ValueError(f"--ssl-keyfile-password-file: {exc}") from None
    try:   # what each worker's uvicorn will do, once here: a clear message, no traceback
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            certfile, keyfile, password)
    except (OSError, ssl.SSLError) as exc:
        what = str(exc)
        if isinstance(exc, ssl.SSLError):   # OpenSSL says little ("PEM lib"): what it can be
            what = (f"they do not load ({exc.reason or exc}): a wrong password, an encrypted "
                    f"key without one, or a key that is not the certificate's")
        with_key = f" with --ssl-keyfile {keyfile!r}" if keyfile else ""
        raise ValueError(f"cannot use --ssl-certfile {certfile!r}{with_key}: {what}") from None
    return {"ssl_certfile": certfile, "ssl_keyfile": keyfile, "ssl_keyfile_password": password}


def _server_class() -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn that announces itself once it really listens (the port known, even
        for ``--port 0``): the banner doubles as the readiness signal."""

        def __init__(self, config: "uvicorn.Config", on_ready: Callable[[], None]) -> None:
            super().__init__(config)
            self._on_ready = on_ready

        async def startup(self, sockets: Optional[List[socket.socket]] = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and not self.should_exit:
                self._on_ready()

        def serve_until_stopped(self, sockets: Optional[List[socket.socket]] = None) -> int:
            """Run; 0 after a stop, 1 when it could not start (uvicorn exits with its
            own status 3 when the app's startup fails: one documented status instead)."""
            try:
                self.run(sockets=sockets)
            except SystemExit:
                return 1
            return 0 if self.started else 1

    return Server


def run(args: argparse.Namespace) -> int:
    """Run the server until SIGTERM/SIGINT; the exit status."""
    try:
        import uvicorn
        server_class = _server_class()
    except ImportError:
        sys.stderr.write("fastingest serve needs its extra: pip install 'fastingest[server]'\n")
        return 2
    workers = getattr(args, "workers", 1)
    # With several workers the api-status and the metrics live in shared memory made
    # before the fork, so that every worker answers GET /v1/api-status and /metrics alike.
    status = multiprocessing.RawValue(ctypes.c_bool, True) if workers > 1 else None
    log_format = getattr(args, "log_format", "text")
    try:
        protocols = parse_protocols(getattr(args, "protocol", None) or ["all"])
        args.protocols = protocols
        tokens, created = _tokens(args)
        limits = build_limits(args, protocols)
        tls = _tls(args)
        metrics = Metrics(protocols, sources_of(tokens, args.samsara_source), workers)

        def make_app() -> Any:
            return create_app(
                tokens=tokens, store=args.store, limits=limits, protocols=protocols,
                admin_networks=args.admin_network or LOOPBACK_NETWORKS,
                samsara_source=args.samsara_source, samsara_auth=args.samsara_auth,
                read_timeout=getattr(args, "read_timeout", READ_TIMEOUT),
                body_timeout=getattr(args, "body_timeout", None), status=status,
                max_inflight=getattr(args, "max_inflight", MAX_INFLIGHT), metrics=metrics,
                access_log=args.access_log, piece_size=getattr(args, "piece_size", PIECE_SIZE))

        app = make_app()   # also checks the options, before any process is started
        head_protocol, head_options = capped_protocol(
            getattr(args, "max_header_size", DEFAULT_MAX_HEAD),
            getattr(args, "max_headers", DEFAULT_MAX_HEADERS))
    except ValueError as exc:
        sys.stderr.write(f"fastingest serve: {exc}\n")
        return 2

    trusted = getattr(args, "forwarded_allow_ips", None)
    proxy_headers = getattr(args, "proxy_headers", False) or trusted is not None
    if trusted == "*":
        sys.stderr.write("fastingest serve: warning: --forwarded-allow-ips '*' trusts every "
                         "peer: any client can choose its address with X-Forwarded-For, and "
                         "the admin check of PUT /v1/api-status protects nothing\n")
    raise_open_file_limit()   # before the connection cap is derived from it
    header_timeout = getattr(args, "header_timeout", HEADER_TIMEOUT)
    max_connections = getattr(args, "max_connections", None)

    def config_for(app: Any) -> "uvicorn.Config":
        if proxy_headers:
            app = ProxyHeaders(app, trusted or DEFAULT_TRUSTED)
        # One Guard per process: made here, in each worker after the fork.
        guard = Guard(header_timeout, max_connections, on_close=metrics.connection_closed)
        return uvicorn.Config(
            app, host=args.host, port=args.port, lifespan="on",
            log_level=args.log_level, log_config=logging_config(log_format, args.log_level),
            access_log=False,   # fastingest writes its own request lines (logs.py)
            timeout_graceful_shutdown=args.graceful_timeout,
            # never uvicorn's proxy-header middleware (on by default, trusting
            # $FORWARDED_ALLOW_IPS): see fastingest.server.proxy
            proxy_headers=False, loop="auto",   # uvloop when installed
            http=guarded_protocol(head_protocol, guard), **head_options, **tls)

    config = config_for(app)
    try:
        # Bound here, not by uvicorn: IPv6-only, and the banner names the real address.
        sock = sockets.reserve_port(args.host, args.port) if workers > 1 else None
        reserved = sock is not None
        if sock is None:
            sock = sockets.bind(args.host, args.port)
    except OSError as exc:
        sys.stderr.write(f"fastingest serve: cannot listen on {args.host}:{args.port}: "
                         f"{exc}\n")
        return 1
    url = sockets.url(sock)
    if tls:
        url = "https" + url[len("http"):]

    def ready() -> None:
        each = f", {workers} workers" if workers > 1 else ""
        print(f"fastingest serve: {' + '.join(protocols)} on {url}, "
              f"store {redact_url(args.store)}{each}",
              flush=True)
        if created is not None:
            cacert = f"--cacert {shlex.quote(tls['ssl_certfile'])} " if tls else ""
            print(f"No --token given: created source 'default' with token {created}\n"
                  f"(it changes at every start; pass --token SOURCE=TOKEN to keep one). Try:\n"
                  f"  curl -i {cacert}-X POST {url}/ -H 'Authorization: Bearer {created}' "
                  f"-H 'Content-Type: application/json' -d {shlex.quote(FIRST_EVENT)}", flush=True)

    if workers > 1:
        return _run_workers(workers, make_app, config_for, config, ready, server_class,
                            sock, reserved, metrics,
                            getattr(args, "worker_timeout", HEARTBEAT_TIMEOUT),
                            getattr(args, "worker_startup_timeout", STARTUP_TIMEOUT))
    server = server_class(config, ready)
    # On SIGTERM/SIGINT uvicorn shuts down gracefully, then re-raises the signal, so the
    # process ends "killed by SIGTERM" as supervisors expect. uvicorn listens on the
    # socket (config.backlog) and closes it.
    status_code: int = server.serve_until_stopped(sockets=[sock])
    return status_code


def _run_workers(workers: int, make_app: Callable[[], Any], config_for: Callable[[Any], Any],
                 config: Any, ready: Callable[[], None], server_class: Any,
                 sock: socket.socket, reserved: bool, metrics: Metrics,
                 heartbeat_timeout: float = HEARTBEAT_TIMEOUT,
                 startup_timeout: float = STARTUP_TIMEOUT) -> int:
    """Fork ``workers`` uvicorn servers on ``sock``'s port, supervise them. Each worker
    listens on its own SO_REUSEPORT socket (balanced by the kernel) when ``reserved``
    (``sock`` only holds the port); else they all share ``sock``."""
    from .workers import Supervisor

    def worker(listening: Callable[[], None]) -> int:
        # In the forked child: its own socket, app, store, event loop and metrics row.
        metrics.bind(supervisor.slot)
        own = sockets.listen_on(sock, config.backlog) if reserved else sock
        server = server_class(config_for(make_app()), listening)
        status: int = server.serve_until_stopped(sockets=[own])
        return status

    try:
        supervisor = Supervisor(workers, worker, on_ready=ready,
                                heartbeat_timeout=heartbeat_timeout,
                                startup_timeout=startup_timeout)
        return supervisor.run()
    except RuntimeError as exc:
        sys.stderr.write(f"fastingest serve: {exc}\n")
        return 2
    finally:
        sock.close()


__all__ = ["build_limits", "parse_protocols", "parse_size", "parse_tokens", "register", "run"]
