"""Credentials of the shipper protocols, mapped to fastingest's token → source table.

Every form a real client sends carries a token somewhere: ``Bearer <token>``,
``Basic base64(user:token)`` (the token is the password; any user), ``ApiKey <b64>``
(the whole credential, or once decoded the part after the first ``:`` as in
``base64("id:api_key")``) and ``Splunk <token>``. :func:`read_credentials` parses the
header once; :meth:`Credentials.source` looks the candidates up.
"""
from __future__ import annotations

import base64
import binascii
from typing import Mapping, NamedTuple, Optional, Tuple

from . import Request

SCHEMES = ("bearer", "basic", "apikey", "splunk")


class Credentials(NamedTuple):
    """``scheme`` lower-cased ("" without an Authorization header), the ``tokens`` to try
    in order (empty when the header is malformed), and the Basic ``user``."""

    scheme: str
    tokens: Tuple[str, ...]
    user: str = ""

    @property
    def present(self) -> bool:
        return bool(self.scheme)

    def source(self, table: Mapping[str, str], schemes: Tuple[str, ...] = SCHEMES
               ) -> Optional[str]:
        """The source of the first candidate token in ``table`` (None if none is, or the
        scheme is not one of ``schemes``)."""
        if self.scheme not in schemes:
            return None
        for token in self.tokens:
            found = table.get(token)
            if found is not None:
                return found
        return None


def _b64(text: str) -> Optional[str]:
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None


def read_credentials(request: Request) -> Credentials:
    """Parse ``Authorization`` (scheme case-insensitive)."""
    value = request.header(b"authorization")
    if not value:
        return Credentials("", ())
    scheme, _, rest = value.partition(" ")
    scheme = scheme.lower()
    rest = rest.strip()
    if not rest:
        return Credentials(scheme or "?", ())
    if scheme == "basic":
        decoded = _b64(rest)
        if decoded is None or ":" not in decoded:
            return Credentials(scheme, ())
        user, _, password = decoded.partition(":")
        return Credentials(scheme, (password,) if password else (), user)
    if scheme == "apikey":
        decoded = _b64(rest)
        if decoded is not None and ":" in decoded:
            return Credentials(scheme, (rest, decoded.partition(":")[2]))
        return Credentials(scheme, (rest,))
    return Credentials(scheme, (rest,))


__all__ = ["Credentials", "SCHEMES", "read_credentials"]
