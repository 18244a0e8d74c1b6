"""Caps on the request head (request line and header fields) of ``fastingest serve``.

uvicorn's httptools protocol takes request heads of any size (httptools gathers a
32 MB header whole before anyone sees it) with any number of fields.
``fastingest serve`` caps both, per request: ``--max-header-size`` (default 32 KiB:
the request line and every header field as sent, line ends included) and
``--max-headers`` (default 100 fields). A request over either gets 431 ``Request
header fields too large.`` and the connection is closed, before the app sees it; no
more than the cap of a head is ever given to the parser. The close lingers (as
nginx's ``lingering_close``): the write side is shut at once, what the client still
sends is read and dropped for up to :data:`LINGER_SECONDS`, so that the answer is
not lost to a TCP reset.

Without httptools uvicorn falls back to h11, which enforces the same size cap itself
(``h11_max_incomplete_event_size``; uvicorn answers 400 there), the field count then
being bounded by the size.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Tuple

log = logging.getLogger("fastingest.server")

DEFAULT_MAX_HEAD = 32 * 1024
DEFAULT_MAX_HEADERS = 100
#: How long a refused connection is read (and dropped) before it is closed.
LINGER_SECONDS = 2.0

_TOO_LARGE_TEXT = b"Request header fields too large."
TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
             b"content-type: text/plain; charset=utf-8\r\n"
             b"content-length: %d\r\n"
             b"connection: close\r\n\r\n%s" % (len(_TOO_LARGE_TEXT), _TOO_LARGE_TEXT))


class HeadTooLarge(Exception):
    """Raised in a parser callback to stop parsing a head over the field count."""


def capped_protocol(max_head: int = DEFAULT_MAX_HEAD, max_headers: int = DEFAULT_MAX_HEADERS
                    ) -> Tuple[type, Dict[str, Any]]:
    """The uvicorn HTTP protocol class enforcing the caps, and the ``uvicorn.Config``
    keyword arguments it needs: the capped httptools protocol, or h11's with its size
    cap where httptools is missing. (``fastingest serve`` wraps the class further, see
    :mod:`.connections`.)"""
    if max_head < 1 or max_headers < 1:
        raise ValueError("the request head caps (--max-header-size, --max-headers) must be "
                         "positive")
    try:
        import httptools  # noqa: F401
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol
        return H11Protocol, {"h11_max_incomplete_event_size": max_head}

    class CappedHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol, given at most ``max_head`` bytes of a request
        head and ``max_headers`` header fields."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._head_left: Optional[int] = max_head   # None while in a body
            self._fields = 0
            self._too_large = False
            self._lingering = False
            #: The head was refused: it will never complete (for :mod:`.connections`).
            self.head_refused = False

        def data_received(self, data: bytes) -> None:
            if self._lingering:
                return   # refused: dropped until the close
            while self._head_left is not None and len(data) > self._head_left:
                # Give the parser only what the head may still take: the head must
                # end within it, else the request is refused.
                piece, data = data[:self._head_left], data[self._head_left:]
                self._head_left = 0
                super().data_received(piece)
                if self.transport.is_closing() or self._lingering:
                    return
                if self._head_left is not None and self._head_left == 0:
                    self._refuse()
                    return
            if self._head_left is not None:
                self._head_left -= len(data)
            super().data_received(data)

        def on_message_begin(self) -> None:
            self._fields = 0
            super().on_message_begin()

        def on_header(self, name: bytes, value: bytes) -> None:
            self._fields += 1
            if self._fields > max_headers:
                self._too_large = True
                raise HeadTooLarge   # httptools stops; uvicorn calls send_400_response
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._head_left = None
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._head_left = max_head   # the next request's head starts here
            super().on_message_complete()

        def send_400_response(self, msg: str) -> None:
            if self._too_large:
                self._refuse()
            else:
                super().send_400_response(msg)

        def _refuse(self) -> None:
            if self._lingering:
                return
            log.debug("request head over %d bytes or %d fields: 431", max_head, max_headers)
            self._too_large = self._lingering = self.head_refused = True
            if self.cycle is None or self.cycle.response_complete:
                self.transport.write(TOO_LARGE)
            # else a pipelined response is still being written: no answer, just close
            if self.transport.can_write_eof():
                self.transport.write_eof()
                self.loop.call_later(LINGER_SECONDS, self.transport.close)
            else:
                self.transport.close()

    return CappedHttpToolsProtocol, {}


__all__ = ["DEFAULT_MAX_HEAD", "DEFAULT_MAX_HEADERS", "HeadTooLarge", "LINGER_SECONDS",
           "capped_protocol"]
