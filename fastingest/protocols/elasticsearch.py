"""Elasticsearch ``_bulk`` (PROTOCOLS.md §2), sans-I/O: what Beats, Logstash, Fluent Bit,
Vector and elasticsearch-py's ``helpers.bulk`` send.

Routes: ``POST|PUT /_bulk`` and ``/{index}/_bulk`` (query parameters ignored), ``GET /``
(cluster info) and ``HEAD /`` (``ping``). ``POST /`` is not this protocol's (Better
Stack's). Every answer carries ``X-Elastic-Product: Elasticsearch``.

Order of checks:

1. method → 405 ``{"error":"Incorrect HTTP method for uri [...] and method [...],
   allowed: [POST, PUT]","status":405}``;
2. credentials (``Basic`` with the token as password, ``ApiKey``, ``Bearer``): missing →
   401 ``security_exception`` with both ``WWW-Authenticate`` challenges; not a known
   token → 401 ``unable to authenticate user [<user>] for REST request [<path>]``
   (Basic), ``unable to authenticate with provided credentials and anonymous access is
   not allowed for this request`` (ApiKey, Bearer);
3. ``Content-Type`` (none means NDJSON) → 406 ``Content-Type header [...] is not
   supported``; ``Content-Encoding`` → 400 ``illegal_argument_exception``;
   ``Content-Length`` over the limit → 413;
4. the body, as it streams (:mod:`fastingest.bulk`): a malformed action line → 400 with
   ES's ``illegal_argument_exception`` texts; more than ``max_actions`` actions → 413;
5. 200 once the store committed: one item per action in request order. ``index`` and
   ``create`` store their source (item 201 ``created``, a generated 20-character id
   when none was given); a bad source line fails its item only (400
   ``document_parsing_exception``), as does an action with no index (400
   ``action_request_validation_exception``); ``update`` is a 400 item (not supported by
   an append-only store); ``delete`` is a 404 ``not_found`` item (no document is ever
   addressable by id here). ``errors`` is true when an item carries an ``error``.
   A store failure is 429 ``es_rejected_execution_exception`` (the clients retry it).
"""
from __future__ import annotations

import secrets
import time
from array import array
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

import orjson

from ..bulk import Action, BulkReader, BulkSyntaxError
from ..errors import IngestError, PayloadTooLarge
from ..formats import media_type
from ..constants import MiB
from ..limits import Limits
from . import Answer, Events, Exchange, Protocol, Request, Response, declared_too_large
from .auth import read_credentials
from .batched import BatchedExchange, answer_with

#: ES's ``http.max_content_length`` (100 MB) for the body, compressed or not. One
#: document may take 10 MiB (ES allows the whole body; a line is held while it arrives,
#: so this bounds a request's memory: raise it with ``--max-event elasticsearch=SIZE``).
DEFAULT_LIMITS = Limits(max_body=100 * MiB, max_compressed=100 * MiB, max_event=10 * MiB)
#: Most actions one request may hold: the response has one item per action, so this
#: bounds its size (about 250 bytes an item). Real clients send 500 (elasticsearch-py),
#: 1,600 (Filebeat) or a few thousand.
MAX_ACTIONS = 100_000
#: What ``GET /`` says this server is (Beats and Logstash read the version).
VERSION = "8.17.0"

PRODUCT = (b"x-elastic-product", b"Elasticsearch")
JSON_TYPE = (b"content-type", b"application/json")
CHALLENGES = ('Basic realm="security" charset="UTF-8"', "ApiKey")
_NDJSON_TYPES = ("application/x-ndjson", "application/json")
_VND_TYPES = ("application/vnd.elasticsearch+x-ndjson", "application/vnd.elasticsearch+json")
_SHARDS = {"total": 1, "successful": 1, "failed": 0}


def es_response(status: int, value: object, *extra: Tuple[bytes, bytes]) -> Response:
    return Response(status, (JSON_TYPE, PRODUCT) + extra, orjson.dumps(value))


def error_response(status: int, type_: str, reason: str, **more: Any) -> Response:
    """ES's whole-request error shape."""
    cause = {"type": type_, "reason": reason, **more}
    return es_response(status, {"error": {"root_cause": [cause], **cause}, "status": status})


def cluster_info(version: str = VERSION) -> Dict[str, Any]:
    """The ``GET /`` body (what elasticsearch-py 7.x checks: version, tagline, flavor)."""
    return {
        "name": "fastingest", "cluster_name": "fastingest",
        "cluster_uuid": "AAAAAAAAAAAAAAAAAAAAAA",
        "version": {
            "number": version, "build_flavor": "default", "build_type": "docker",
            "build_hash": "0000000", "build_date": "2024-12-11T12:08:05.663969764Z",
            "build_snapshot": False, "lucene_version": "9.12.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0"},
        "tagline": "You Know, for Search",
    }


def _bulk_index(path: str) -> Optional[Tuple[Optional[str], str]]:
    """``(index or None, path)`` for a ``_bulk`` path, else None."""
    if path == "/_bulk":
        return None, path
    parts = path.split("/")
    if len(parts) == 3 and parts[0] == "" and parts[2] == "_bulk" and parts[1] \
            and not parts[1].startswith("_"):
        return parts[1], path
    return None


def _content_type_ok(value: Optional[str]) -> bool:
    if value is None:
        return True   # (unverified in ES) read as NDJSON
    kind = media_type(value)
    if kind in _NDJSON_TYPES:
        return True
    if kind in _VND_TYPES:
        params = dict(p.strip().lower().partition("=")[::2] for p in value.split(";")[1:])
        return params.get("compatible-with", "9") in ("7", "8", "9")
    return False


class Elasticsearch(Protocol):
    """The ``_bulk`` API and the cluster root. ``tokens`` maps each accepted token (the
    Basic password, the API key, the Bearer token) to its source."""

    name = "elasticsearch"

    def __init__(self, tokens: Mapping[str, str], limits: Limits = DEFAULT_LIMITS, *,
                 version: str = VERSION, max_actions: int = MAX_ACTIONS) -> None:
        self.tokens = dict(tokens)
        self.limits = limits
        self.version = version
        self.max_actions = max_actions

    def start(self, request: Request) -> Optional[Exchange]:
        if request.path == "/":
            if request.method not in ("GET", "HEAD"):
                return None   # POST / is Better Stack's
            source = self._authenticate(request)
            if isinstance(source, Answer):
                return source
            if request.method == "HEAD":
                return Answer(Response(200, (JSON_TYPE, PRODUCT), b""))
            return Answer(es_response(200, cluster_info(self.version)))
        found = _bulk_index(request.path)
        if found is None:
            return None
        index, path = found
        if request.method not in ("POST", "PUT"):
            return Answer(es_response(405, {
                "error": f"Incorrect HTTP method for uri [{path}] and method "
                         f"[{request.method}], allowed: [POST, PUT]",
                "status": 405}))
        source = self._authenticate(request)
        if isinstance(source, Answer):
            return source
        content_type = request.header(b"content-type")
        if not _content_type_ok(content_type):
            return Answer(es_response(406, {
                "error": f"Content-Type header [{content_type}] is not supported",
                "status": 406}))
        try:
            reader = BulkReader(request.header(b"content-encoding"), self.limits,
                                request.received_ns, request.delivery.piece_size)
        except IngestError as exc:
            return _failed(exc)
        if declared_too_large(request, self.limits):
            return _failed(PayloadTooLarge(detail="declared Content-Length over the limit"))
        return BulkExchange(source, request.received_ns, reader, index,
                            _response_type(request), self.max_actions)

    def _authenticate(self, request: Request) -> Any:
        credentials = read_credentials(request)
        path = request.path
        if not credentials.present:
            reason = f"missing authentication credentials for REST request [{path}]"
            answer = error_response(401, "security_exception", reason,
                                    header={"WWW-Authenticate": list(CHALLENGES)})
            headers = answer.headers + tuple(
                (b"www-authenticate", c.encode("latin-1")) for c in CHALLENGES)
            return Answer(Response(401, headers, answer.body))
        source = credentials.source(self.tokens, ("basic", "apikey", "bearer"))
        if source is None:
            if credentials.scheme == "basic":
                reason = (f"unable to authenticate user [{credentials.user}] for REST "
                          f"request [{path}]")
            else:
                reason = ("unable to authenticate with provided credentials and anonymous "
                          "access is not allowed for this request")
            answer = error_response(401, "security_exception", reason,
                                    header={"WWW-Authenticate": list(CHALLENGES)})
            headers = answer.headers + tuple(
                (b"www-authenticate", c.encode("latin-1")) for c in CHALLENGES)
            return Answer(Response(401, headers, answer.body))
        return source


def _response_type(request: Request) -> Tuple[bytes, bytes]:
    accept = request.header(b"accept") or ""
    if media_type(accept) == "application/vnd.elasticsearch+json":
        return (b"content-type", accept.replace(" ", "").encode("latin-1"))
    return JSON_TYPE


def _error_for(exc: IngestError) -> Response:
    if isinstance(exc, BulkSyntaxError):
        return error_response(exc.status, exc.type, exc.message)
    if exc.status == 413:
        return error_response(413, "content_too_long_exception",
                              f"request body is too large: {exc.detail or exc.message}")
    if exc.status == 415:
        return error_response(400, "illegal_argument_exception", exc.detail or exc.message)
    if exc.status == 400:   # corrupt compressed data
        return error_response(400, "parse_exception", exc.detail or exc.message)
    return error_response(400, "x_content_parse_exception",
                          f"{exc.detail or exc.message}" +
                          (f" at line {exc.line}" if exc.line else ""))


def _failed(exc: IngestError) -> Answer:
    return answer_with(_error_for(exc), exc)


class BulkExchange(BatchedExchange):
    """One ``_bulk`` request: store each index/create source, render each item."""

    UNAVAILABLE = error_response(429, "es_rejected_execution_exception",
                                 "the store could not take the events; retry")

    def __init__(self, source: str, received_ns: int, reader: BulkReader,
                 index: Optional[str], content_type: Tuple[bytes, bytes],
                 max_actions: int) -> None:
        super().__init__(source, received_ns)
        self._reader = reader
        self._index = index
        self._content_type = content_type
        self._max_actions = max_actions
        self._items = bytearray()
        self._count = 0
        self._errors = False
        self._seq = 0
        # Generated ids: a random prefix per request and a counter, 20 base64url chars.
        self._id_prefix = secrets.token_urlsafe(9).encode("ascii")
        self._heads: Dict[Tuple[str, str], bytes] = {}
        self._started = time.monotonic()

    def _read(self, data: bytes) -> Iterator[Events]:
        for actions in self._reader.feed(data):
            yield self._events(actions)

    def _finish(self) -> Iterator[Events]:
        for actions in self._reader.close():
            yield self._events(actions)

    def _events(self, actions: List[Action]) -> Events:
        events: List[Dict[str, Any]] = []
        times = array("q")
        for action in actions:
            self._count += 1
            if self._count > self._max_actions:
                raise PayloadTooLarge(detail=f"more than {self._max_actions} actions")
            if self._item(action):
                assert action.source is not None
                events.append(action.source)
                times.append(action.time_ns)
        return Events(self.source, events, times, self.received_ns)

    def _item(self, action: Action) -> bool:
        """Render the action's item; True when its source is to be stored."""
        meta = action.meta
        index = meta.get("_index", self._index)
        index = None if index is None else str(index)
        given = meta.get("_id")
        doc_id = None if given is None else str(given)
        op = action.op
        body: Dict[str, Any]
        stored = False
        if op == "update":
            body = self._failure(index, doc_id, 400, "illegal_argument_exception",
                                 "[update] is not supported by this endpoint")
        elif op == "delete":
            if doc_id is None:
                body = self._failure(index, None, 400, "action_request_validation_exception",
                                     "Validation Failed: 1: id is missing;")
            else:
                body = self._result(index, doc_id, "not_found", 404)
        elif index is None:
            body = self._failure(None, doc_id, 400, "action_request_validation_exception",
                                 "Validation Failed: 1: index is missing;")
        elif action.error is not None:
            body = self._failure(index, doc_id, 400, "document_parsing_exception",
                                 action.error)
        else:
            self._created(op, index, doc_id)
            return True
        if self._items:
            self._items += b","
        self._items += orjson.dumps({op: body})
        return stored

    def _created(self, op: str, index: str, doc_id: Optional[str]) -> None:
        """Render a 201 item straight to bytes (the common case: one per document)."""
        key = (op, index)
        head = self._heads.get(key)
        if head is None:
            head = b'{"%s":{"_index":%s,"_id":' % (op.encode(), orjson.dumps(index))
            if len(self._heads) < 64:   # a request names a few indexes, not thousands
                self._heads[key] = head
        seq = self._seq
        self._seq += 1
        ident = b'"%s"' % self._new_id(seq) if doc_id is None else orjson.dumps(doc_id)
        items = self._items
        if items:
            items += b","
        items += head
        items += ident
        items += _CREATED % seq

    def _result(self, index: Optional[str], doc_id: str, result: str, status: int
                ) -> Dict[str, Any]:
        seq = self._seq
        self._seq += 1
        return {"_index": index, "_id": doc_id, "_version": 1, "result": result,
                "_shards": _SHARDS, "_seq_no": seq, "_primary_term": 1, "status": status}

    def _failure(self, index: Optional[str], doc_id: Optional[str], status: int, type_: str,
                 reason: str) -> Dict[str, Any]:
        self._errors = True
        return {"_index": index, "_id": doc_id, "status": status,
                "error": {"type": type_, "reason": reason}}

    def _new_id(self, n: int) -> bytes:
        """A 20-character id unique to this request's ``n``-th item: the request's random
        prefix (12 base64url characters) and the number in 8 hex digits (a request holds
        at most ``max_actions`` items, far below 16^8)."""
        return self._id_prefix + b"%08x" % n

    def _success(self) -> Response:
        took = int((time.monotonic() - self._started) * 1000)
        body = b'{"took":%d,"errors":%s,"items":[%s]}' % (
            took, b"true" if self._errors else b"false", bytes(self._items))
        return Response(200, (self._content_type, PRODUCT), body)

    def _error_response(self, exc: IngestError) -> Response:
        return _error_for(exc)

    def timed_out(self) -> Response:
        answer = error_response(408, "timeout_exception", "request body timed out")
        self.response = answer._replace(headers=answer.headers + ((b"connection", b"close"),))
        return self.response


_CREATED = (b',"_version":1,"result":"created","_shards":{"total":1,"successful":1,'
            b'"failed":0},"_seq_no":%d,"_primary_term":1,"status":201}}')

__all__ = ["BulkExchange", "DEFAULT_LIMITS", "Elasticsearch", "MAX_ACTIONS", "VERSION",
           "cluster_info", "error_response"]
