"""Choose the Cython kernels or their pure-Python twins (msgpack-python's pattern).

Every compiled module has a pure-Python twin exporting the same names with the same
answers:

=================  ===========================  ===========================================
concern            pure-Python twin             compiled twin
=================  ===========================  ===========================================
framing            ``fastingest/framing/``      ``fastingest/framing/_framing.pyx`` (+ .pxi)
building           ``fastingest/build.py``      ``fastingest/_build.pyx``
JSON build         orjson (``build.py``)        ``fastingest/_jsonbuild.pyx`` (+ jsonbuild.h)
whole body         ``fastingest/whole.py``      ``fastingest/_whole.pyx``
one-object         ``fastingest/oneobject.py``  ``fastingest/_oneobject.pyx``
MessagePack build  ``fastingest/unpack.py``     ``fastingest/_unpack.pyx``
validation         ``fastingest/validate.py``   ``fastingest/_validate.pyx``
event time         ``fastingest/timestamps.py`` ``fastingest/_timestamps.pyx``
protobuf walkers   ``fastingest/protobuf.py``   ``fastingest/_protobuf.pyx``
MessagePack→JSON   ``fastingest/transcode.py``  ``fastingest/_transcode.pyx`` (+ transcode.h)
top-level members  ``fastingest/members.py``    ``fastingest/_members.pyx``
store rows         ``fastingest/rows.py``       ``fastingest/_rows.pyx``
=================  ===========================  ===========================================

``FASTINGEST_PUREPYTHON=1`` at run time forces the twins; otherwise the compiled modules
are used when they import. When they were built (a compiled file is there) but do not
import, for instance built for another Python version or against an older one's C API,
the twins run with a RuntimeWarning saying why: never a silent fallback to code that is
ten to twenty times slower. The rest of the package looks kernels up through
:data:`active`, so the test-suite can run every codec test against both sets (see
``tests/conftest.py``).
"""
from __future__ import annotations

import glob
import os
import warnings
from types import ModuleType
from typing import List, Optional

from . import build as _py_build
from . import framing as _py_framing
from . import members as _py_members
from . import oneobject as _py_oneobject
from . import protobuf as _py_protobuf
from . import rows as _py_rows
from . import timestamps as _py_timestamps
from . import transcode as _py_transcode
from . import unpack as _py_unpack
from . import validate as _py_validate
from . import whole as _py_whole


class Kernels:
    """One implementation of the hot loops: framing, building (and the MessagePack
    builder), the whole-body path and its one-object shortcut, validation, event time,
    the protobuf walkers of the shipper protocols, and the raw path's MessagePack-to-JSON
    transcoder and shallow read of an event's members, and the SQLite store's rows."""

    __slots__ = ("name", "framing", "build", "unpack", "whole", "one_object", "validate",
                 "timestamps", "protobuf", "transcode", "members", "rows", "parse_dt",
                 "event_times")

    def __init__(self, name: str, framing: ModuleType, build: ModuleType, unpack: ModuleType,
                 whole: ModuleType, one_object: ModuleType, validate: ModuleType,
                 timestamps: ModuleType, protobuf: ModuleType, transcode: ModuleType,
                 members: ModuleType, rows: ModuleType) -> None:
        self.name = name
        self.framing = framing
        self.build = build
        self.unpack = unpack
        self.whole = whole
        self.one_object = one_object
        self.validate = validate
        self.timestamps = timestamps
        self.protobuf = protobuf
        self.transcode = transcode
        self.members = members
        self.rows = rows
        self.parse_dt = timestamps.parse_dt
        self.event_times = timestamps.event_times

    def __repr__(self) -> str:
        return f"<fastingest kernels {self.name!r}>"


python = Kernels("python", _py_framing, _py_build, _py_unpack, _py_whole, _py_oneobject,
                 _py_validate, _py_timestamps, _py_protobuf, _py_transcode, _py_members,
                 _py_rows)


#: The compiled modules, relative to the package (each a ``_X.pyx`` there).
COMPILED = ("framing/_framing", "_build", "_jsonbuild", "_unpack", "_whole", "_members",
            "_oneobject", "_protobuf", "_rows", "_timestamps", "_transcode", "_validate")


def built_extensions() -> List[str]:
    """Files of compiled kernels in the package, for any Python version."""
    here = os.path.dirname(os.path.abspath(__file__))
    return sorted(path for name in COMPILED
                  for path in glob.glob(os.path.join(here, name + ".*"))
                  if path.endswith((".so", ".pyd")))


def _load_cython() -> Optional[Kernels]:
    try:
        from . import (_build, _jsonbuild, _members, _oneobject, _protobuf,  # noqa: F401
                       _rows, _timestamps, _transcode, _unpack, _validate, _whole)
        from .framing import _framing
    except ImportError as exc:
        built = built_extensions()
        if built:   # built, yet unusable here: say so (a wheel without them is silent)
            warnings.warn(
                f"fastingest: the compiled kernels do not import ({exc}); running the "
                f"pure-Python twins, 10-20x slower. Built: "
                f"{', '.join(os.path.basename(p) for p in built)}. Rebuild them for this "
                f"Python (pip install -e . or pip install --force-reinstall fastingest), or "
                f"set FASTINGEST_PUREPYTHON=1 to choose the twins.",
                RuntimeWarning, stacklevel=2)
        return None
    return Kernels("cython", _framing, _build, _unpack, _whole, _oneobject, _validate,
                   _timestamps, _protobuf, _transcode, _members, _rows)


PUREPYTHON = bool(os.environ.get("FASTINGEST_PUREPYTHON"))
cython: Optional[Kernels] = None if PUREPYTHON else _load_cython()
active: Kernels = cython if cython is not None else python
