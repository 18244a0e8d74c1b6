"""fastingest serve: both ingestion APIs on uvicorn, events into SQLite or NATS.

  fastingest serve                                  # 127.0.0.1:9000, sqlite:fastingest.db
  fastingest serve --token app=s3cret --token web=0ther --store sqlite:/var/lib/events.db
  FASTINGEST_TOKENS="app=s3cret,web=0ther" fastingest serve --host 0.0.0.0
  fastingest serve --workers 4 --store 'nats://127.0.0.1:4222?stream=FASTINGEST'
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
import logging
import multiprocessing
import os
import re
import secrets
import shlex
import socket
import ssl
import sys
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from ..limits import DEFAULT_LIMITS, Limits
from ..protocols import LOOPBACK_NETWORKS, parse_networks
from .asgi import MAX_INFLIGHT, PROTOCOLS, READ_TIMEOUT, create_app
from .connections import (HEADER_TIMEOUT, MAX_CONNECTIONS, Guard, http_protocol,
                          raise_open_file_limit)
from .logs import LOG_FORMATS, logging_config
from .metrics import Metrics, sources_of

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


def _workers(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 256:
        raise argparse.ArgumentTypeError(f"workers: a number from 1 to 256, not {text!r}")
    return int(text)


def _network(text: str) -> str:
    try:
        parse_networks([text])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``serve`` subcommand to the ``fastingest`` command."""
    p = subparsers.add_parser(
        "serve", help="run the ingestion server (Better Stack and Samsara APIs)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    p.add_argument("--ssl-certfile", metavar="PATH",
                   help="serve HTTPS with this certificate chain (PEM)")
    p.add_argument("--ssl-keyfile", metavar="PATH",
                   help="the certificate's private key (PEM; default: in --ssl-certfile)")
    p.add_argument("--ssl-keyfile-password-file", metavar="PATH",
                   help=f"file whose first line is the key's password (or ${KEY_PASSWORD_ENV})")
    p.add_argument("--protocol", choices=(*PROTOCOLS, "both"), default="both",
                   help="which API to serve (default both: their paths do not clash)")
    p.add_argument("--store", default=DEFAULT_STORE,
                   help=f"where events go (default {DEFAULT_STORE}; "
                        "sqlite:PATH?synchronous=normal trades power-loss safety for speed; "
                        "nats://HOST:PORT[?stream=NAME&replicas=N&max_age=7d...] for "
                        "NATS JetStream)")
    p.add_argument("--workers", type=_workers, default=1, metavar="N",
                   help="worker processes sharing the port (default 1; each has its own "
                        "store connection)")
    p.add_argument("--token", action="append", default=[], metavar="SOURCE=TOKEN",
                   help=f"accept this Bearer token for SOURCE (repeatable; also ${TOKENS_ENV}="
                        "'src1=tok1,src2=tok2')")
    p.add_argument("--admin-network", action="append", type=_network, metavar="CIDR",
                   help="client network allowed to PUT /v1/api-status and GET /metrics "
                        "(repeatable; default loopback only)")
    p.add_argument("--samsara-source", default="samsara",
                   help="source name of Samsara events (default samsara)")
    p.add_argument("--samsara-auth", action="store_true",
                   help="require a Bearer token on /v1/events too (stored under its source)")
    p.add_argument("--max-body", type=parse_size, default=DEFAULT_LIMITS.max_body,
                   metavar="SIZE", help="decompressed body limit (default 20MiB)")
    p.add_argument("--max-compressed", type=parse_size, default=DEFAULT_LIMITS.max_compressed,
                   metavar="SIZE", help="compressed body limit (default 10MiB)")
    p.add_argument("--max-event", type=parse_size, default=DEFAULT_LIMITS.max_event,
                   metavar="SIZE", help="one event's limit (default 1MiB)")
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
    if not tokens and args.protocol in ("betterstack", "both"):
        created = secrets.token_urlsafe(18)
        tokens[created] = "default"
    return tokens, created


def _url(host: str, port: int, scheme: str = "http") -> str:
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


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

        def __init__(self, config: "uvicorn.Config", on_ready: Callable[[int], None]) -> None:
            super().__init__(config)
            self._on_ready = on_ready

        async def startup(self, sockets: Optional[List[socket.socket]] = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and not self.should_exit:
                self._on_ready(self.servers[0].sockets[0].getsockname()[1])

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
        tokens, created = _tokens(args)
        limits = Limits(max_body=args.max_body, max_compressed=args.max_compressed,
                        max_event=args.max_event)
        protocols = PROTOCOLS if args.protocol == "both" else (args.protocol,)
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
                access_log=args.access_log)

        app = make_app()   # also checks the options, before any process is started
    except ValueError as exc:
        sys.stderr.write(f"fastingest serve: {exc}\n")
        return 2

    raise_open_file_limit()   # before the connection cap is derived from it
    header_timeout = getattr(args, "header_timeout", HEADER_TIMEOUT)
    max_connections = getattr(args, "max_connections", None)

    def config_for(app: Any) -> "uvicorn.Config":
        # One Guard per process: made here, in each worker after the fork.
        guard = Guard(header_timeout, max_connections, on_close=metrics.connection_closed)
        return uvicorn.Config(
            app, host=args.host, port=args.port, lifespan="on",
            log_level=args.log_level, log_config=logging_config(log_format, args.log_level),
            access_log=False,   # fastingest writes its own request lines (logs.py)
            timeout_graceful_shutdown=args.graceful_timeout,
            loop="auto", http=http_protocol(guard), **tls)   # uvloop, httptools if installed

    config = config_for(app)
    logging.getLogger("fastingest").setLevel(args.log_level.upper())

    def ready(port: int) -> None:
        url = _url(args.host, port, "https" if tls else "http")
        each = f", {workers} workers" if workers > 1 else ""
        print(f"fastingest serve: {' + '.join(protocols)} on {url}, store {args.store}{each}",
              flush=True)
        if created is not None:
            cacert = f"--cacert {shlex.quote(tls['ssl_certfile'])} " if tls else ""
            print(f"No --token given: created source 'default' with token {created}\n"
                  f"(it changes at every start; pass --token SOURCE=TOKEN to keep one). Try:\n"
                  f"  curl -i {cacert}-X POST {url}/ -H 'Authorization: Bearer {created}' "
                  f"-H 'Content-Type: application/json' -d {shlex.quote(FIRST_EVENT)}", flush=True)

    if workers > 1:
        return _run_workers(workers, make_app, config_for, config, ready, server_class, metrics)
    server = server_class(config, ready)
    # On SIGTERM/SIGINT uvicorn shuts down gracefully, then re-raises the signal, so the
    # process ends "killed by SIGTERM" as supervisors expect.
    status_code: int = server.serve_until_stopped()
    return status_code


def _run_workers(workers: int, make_app: Callable[[], Any], config_for: Callable[[Any], Any],
                 config: Any, ready: Callable[[int], None], server_class: Any,
                 metrics: Metrics) -> int:
    """Reserve the port, fork ``workers`` uvicorn servers on it, supervise them."""
    from .workers import Supervisor, listen_on, reserve_port
    try:
        # Each worker listens on its own SO_REUSEPORT socket (balanced by the kernel);
        # where that is missing, they all share one socket bound here.
        reserved = reserve_port(config.host, config.port)
        sock = reserved if reserved is not None else config.bind_socket()
    except OSError as exc:
        sys.stderr.write(f"fastingest serve: cannot listen on {config.host}:{config.port}: "
                         f"{exc}\n")
        return 1
    except SystemExit:   # uvicorn logged why (address in use...)
        return 1
    port = sock.getsockname()[1]

    def worker(listening: Callable[[], None]) -> int:
        # In the forked child: its own socket, app, store, event loop and metrics row.
        metrics.bind(supervisor.slot)
        own = listen_on(sock, config.backlog) if reserved is not None else sock
        server = server_class(config_for(make_app()), lambda _port: listening())
        status: int = server.serve_until_stopped(sockets=[own])
        return status

    try:
        supervisor = Supervisor(workers, worker, on_ready=lambda: ready(port))
        return supervisor.run()
    except RuntimeError as exc:
        sys.stderr.write(f"fastingest serve: {exc}\n")
        return 2
    finally:
        sock.close()


__all__ = ["register", "run", "parse_size", "parse_tokens"]
