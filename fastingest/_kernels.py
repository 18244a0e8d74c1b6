"""Choose the Cython kernels or their pure-Python twins (msgpack-python's pattern).

Every compiled module has a pure-Python twin exporting the same names with the same
answers:

=================  ===========================  ===========================================
concern            pure-Python twin             compiled twin
=================  ===========================  ===========================================
framing            ``fastingest/framing/``      ``fastingest/framing/_framing.pyx`` (+ .pxi)
building           ``fastingest/build.py``      ``fastingest/_build.pyx``
whole body         ``fastingest/whole.py``      ``fastingest/_whole.pyx``
one-object         ``fastingest/oneobject.py``  ``fastingest/_oneobject.pyx``
validation         ``fastingest/validate.py``   ``fastingest/_validate.pyx``
event time         ``fastingest/timestamps.py`` ``fastingest/_timestamps.pyx``
protobuf walkers   ``fastingest/protobuf.py``   ``fastingest/_protobuf.pyx``
=================  ===========================  ===========================================

``FASTINGEST_PUREPYTHON=1`` at run time forces the twins; otherwise the compiled modules
are used when they import. The rest of the package looks kernels up through
:data:`active`, so the test-suite can run every codec test against both sets (see
``tests/conftest.py``).
"""
from __future__ import annotations

import os
from types import ModuleType
from typing import Optional

from . import build as _py_build
from . import framing as _py_framing
from . import oneobject as _py_oneobject
from . import protobuf as _py_protobuf
from . import timestamps as _py_timestamps
from . import validate as _py_validate
from . import whole as _py_whole


class Kernels:
    """One implementation of the hot loops: framing, building, the whole-body path and
    its one-object shortcut, validation, event time, and the protobuf walkers of the
    shipper protocols."""

    __slots__ = ("name", "framing", "build", "whole", "one_object", "validate", "timestamps",
                 "protobuf", "parse_dt", "event_times")

    def __init__(self, name: str, framing: ModuleType, build: ModuleType, whole: ModuleType,
                 one_object: ModuleType, validate: ModuleType, timestamps: ModuleType,
                 protobuf: ModuleType) -> None:
        self.name = name
        self.framing = framing
        self.build = build
        self.whole = whole
        self.one_object = one_object
        self.validate = validate
        self.timestamps = timestamps
        self.protobuf = protobuf
        self.parse_dt = timestamps.parse_dt
        self.event_times = timestamps.event_times

    def __repr__(self) -> str:
        return f"<fastingest kernels {self.name!r}>"


python = Kernels("python", _py_framing, _py_build, _py_whole, _py_oneobject, _py_validate,
                 _py_timestamps, _py_protobuf)


def _load_cython() -> Optional[Kernels]:
    try:
        from . import _build, _oneobject, _protobuf, _timestamps, _validate, _whole
        from .framing import _framing
    except ImportError:
        return None
    return Kernels("cython", _framing, _build, _whole, _oneobject, _validate, _timestamps,
                   _protobuf)


PUREPYTHON = bool(os.environ.get("FASTINGEST_PUREPYTHON"))
cython: Optional[Kernels] = None if PUREPYTHON else _load_cython()
active: Kernels = cython if cython is not None else python
