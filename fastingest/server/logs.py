"""The server's logs: one line per rejected request (and per request with the access
log), in text or JSON, and the logging set-up of ``fastingest serve``.

A request line carries what an operator needs to find why a client was refused, and
never a credential: no header is logged (tokens travel in ``Authorization``), the path
is logged without its query string (where some protocols accept a token), and every
client-chosen text is escaped and clipped so that it cannot forge or flood lines.

Text (``--log-format text``, the default)::

    2026-12-06T10:00:00.123Z INFO fastingest.access: 403 POST / protocol=betterstack
        source=- client=127.0.0.1:51234 bytes=52 decoded=0 events=0 ms=0.4 detail="Unauthorized"

JSON (``--log-format json``): one object per line, the same fields as keys
(``time``, ``level``, ``logger``, ``message`` and, for requests, ``status``, ``method``,
``path``, ``protocol``, ``source``, ``client``, ``bytes``, ``decoded``, ``events``,
``ms`` and ``detail``).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Dict, Optional

import orjson

#: Logger of the request lines.
ACCESS_LOGGER = "fastingest.access"
LOG_FORMATS = ("text", "json")
#: Longest client-chosen text (path, detail) put in a line.
MAX_TEXT = 200
#: Rejection lines per second and process before the rest of that second is only
#: counted (one summary line): a flood of bad requests must not become a flood of logs.
REJECTIONS_PER_SECOND = 100

#: Attributes every LogRecord has: anything else was passed as ``extra`` fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_FIELDS = ("status", "method", "path", "protocol", "source", "client", "bytes", "decoded",
           "events", "ms", "detail")


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` with control characters escaped, at most ``limit`` characters (``…``)."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _utc(record: logging.LogRecord) -> str:
    t = time.gmtime(record.created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    """``TIME LEVEL LOGGER: MESSAGE``, request fields as ``key=value``."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_utc(record)} {record.levelname} {record.name}: {record.getMessage()}"
        fields = getattr(record, "request", None)
        if fields is not None:
            line += " " + " ".join(
                f"{key}={_text_value(fields[key])}" for key in _FIELDS[3:] if key in fields)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _text_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return orjson.dumps(value).decode() if (not value or " " in value or '"' in value
                                                or "=" in value) else value
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per record (orjson: every string escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: Dict[str, Any] = {"time": _utc(record), "level": record.levelname.lower(),
                               "logger": record.name, "message": record.getMessage()}
        fields = getattr(record, "request", None)
        if fields is not None:
            doc.update(fields)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def logging_config(log_format: str = "text", level: str = "info") -> Dict[str, Any]:
    """The ``logging.config.dictConfig`` of ``fastingest serve`` (uvicorn's ``log_config``):
    fastingest's and uvicorn's loggers to stderr, in ``log_format``."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format: {' or '.join(LOG_FORMATS)}, not {log_format!r}")
    formatter = {"()": f"{__name__}.{'Json' if log_format == 'json' else 'Text'}Formatter"}
    handler = {"class": "logging.StreamHandler", "formatter": "default",
               "stream": "ext://sys.stderr"}
    level = level.upper()
    one = {"handlers": ["default"], "level": level, "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        # uvicorn reads these two names when it is told to colour its output
        "formatters": {"default": formatter, "access": formatter},
        "handlers": {"default": handler},
        "loggers": {"fastingest": one, "uvicorn": one,
                    "uvicorn.error": {"level": level},
                    "uvicorn.access": {"level": level}},
    }


class RequestLog:
    """Writes the request lines of one process: every rejected request (status 400 or
    more) at INFO, every other one too when ``access_log`` is on."""

    def __init__(self, access_log: bool = False,
                 per_second: int = REJECTIONS_PER_SECOND) -> None:
        self.access_log = access_log
        self.per_second = per_second
        self.log = logging.getLogger(ACCESS_LOGGER)
        self._second = 0
        self._lines = 0         # rejection lines written in this second
        self._suppressed = 0    # rejections only counted in this second

    def wants(self, status: int) -> bool:
        """Whether a request answered ``status`` gets a line (cheap: ask before
        gathering its fields)."""
        return (status >= 400 or self.access_log) and self.log.isEnabledFor(logging.INFO)

    def request(self, status: int, method: str, path: str, *, protocol: Optional[str],
                source: Optional[str], client: Optional[str], received: int,
                decoded: Optional[int], events: int, seconds: float,
                detail: Optional[str] = None) -> None:
        """Write one request's line (call when :meth:`wants` said so)."""
        if status >= 400 and not self._admit():
            return
        fields: Dict[str, Any] = {
            "status": status, "method": clip(method, 16), "path": clip(path),
            "protocol": protocol, "source": source, "client": client, "bytes": received,
            "decoded": decoded, "events": events, "ms": round(seconds * 1000, 3)}
        if detail:
            fields["detail"] = clip(detail)
        self.log.info("%d %s %s", status, fields["method"], fields["path"],
                      extra={"request": fields})

    def _admit(self) -> bool:
        second = int(time.monotonic())
        if second != self._second:
            if self._suppressed:
                self.log.warning("%d more rejected requests in one second were not logged "
                                 "(at most %d lines a second)", self._suppressed,
                                 self.per_second)
            self._second, self._lines, self._suppressed = second, 0, 0
        if self._lines >= self.per_second:
            self._suppressed += 1
            return False
        self._lines += 1
        return True


__all__ = ["ACCESS_LOGGER", "JsonFormatter", "LOG_FORMATS", "RequestLog", "TextFormatter",
           "clip", "logging_config"]
