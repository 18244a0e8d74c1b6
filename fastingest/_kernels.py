"""Choose the Cython kernels or their pure-Python twins (msgpack-python's pattern).

Every compiled module ``fastingest/_X.pyx`` has a pure-Python twin ``fastingest/X.py``
exporting the same names with the same answers. ``FASTINGEST_PUREPYTHON=1`` at run time
forces the twins; otherwise the compiled modules are used when they import. When they
were built (a compiled file is there) but do not import, for instance built for another
Python version or against an older one's C API, the twins run with a RuntimeWarning
saying why: never a silent fallback to code that is ten to twenty times slower.

The rest of the package looks kernels up through :data:`active`, so the test-suite can
run every codec test against both sets (see ``tests/conftest.py``).
"""
from __future__ import annotations

import glob
import os
import warnings
from types import ModuleType
from typing import List, Optional

from . import framing as _py_framing
from . import protobuf as _py_protobuf
from . import timestamps as _py_timestamps
from . import validate as _py_validate


class Kernels:
    """One implementation of the hot loops: framing (spans, limits), event time, grammar
    validation and the protobuf walkers of the shipper protocols."""

    __slots__ = ("name", "framing", "timestamps", "validate", "protobuf", "parse_dt",
                 "event_times")

    def __init__(self, name: str, framing: ModuleType, timestamps: ModuleType,
                 validate: ModuleType, protobuf: ModuleType) -> None:
        self.name = name
        self.framing = framing
        self.timestamps = timestamps
        self.validate = validate
        self.protobuf = protobuf
        self.parse_dt = timestamps.parse_dt
        self.event_times = timestamps.event_times

    def __repr__(self) -> str:
        return f"<fastingest kernels {self.name!r}>"


python = Kernels("python", _py_framing, _py_timestamps, _py_validate, _py_protobuf)


#: The compiled modules (each a ``fastingest/_X.pyx``).
COMPILED = ("_framing", "_protobuf", "_timestamps", "_validate")


def built_extensions() -> List[str]:
    """Files of compiled kernels in the package, for any Python version."""
    here = os.path.dirname(os.path.abspath(__file__))
    return sorted(path for name in COMPILED
                  for path in glob.glob(os.path.join(here, name + ".*"))
                  if path.endswith((".so", ".pyd")))


def _load_cython() -> Optional[Kernels]:
    try:
        from . import _framing, _protobuf, _timestamps, _validate
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
    return Kernels("cython", _framing, _timestamps, _validate, _protobuf)


PUREPYTHON = bool(os.environ.get("FASTINGEST_PUREPYTHON"))
cython: Optional[Kernels] = None if PUREPYTHON else _load_cython()
active: Kernels = cython if cython is not None else python
