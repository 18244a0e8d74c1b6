"""Fixtures of the end-to-end tests (real servers and processes; see servers.py)."""
from __future__ import annotations

import pytest

from servers import NatsServer, require_nats_server


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory):
    """A nats-server with JetStream for the test module (its own: tests that pause or
    stop it disturb no other module)."""
    server = NatsServer(require_nats_server(), tmp_path_factory.mktemp("nats")).start()
    yield server
    server.stop()
