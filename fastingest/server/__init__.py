"""The ready server: an ASGI app over the protocols (:mod:`.asgi`), ``fastingest serve``
(:mod:`.cli`) and the stores that keep the events (:mod:`.stores`)."""
from .asgi import IngestApp, create_app
from .stores import Store, StoreError, Transaction, store_from_url

__all__ = ["IngestApp", "Store", "StoreError", "Transaction", "create_app", "store_from_url"]
