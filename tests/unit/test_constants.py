"""One home for the codec's constants (fastingest.constants): what the other modules
export is that home's objects, and no reason text is written anywhere else."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from fastingest import constants, errors, formats, validate
from fastingest.framing import json_events, ndjson_scanner

REASON_NAMES = [name for name, value in vars(constants).items()
                if name.isupper() and isinstance(value, str)]


def test_reasons_are_distinct():
    texts = [getattr(constants, name) for name in REASON_NAMES]
    assert len(set(texts)) == len(texts)
    assert len(set(constants.REASONS)) == len(constants.REASONS) and constants.REASONS[0] is None


@pytest.mark.parametrize("module", [errors, validate, formats])
def test_other_modules_reexport_the_same_objects(module):
    for name in REASON_NAMES + ["KIND_JSON", "KIND_NDJSON", "KIND_MSGPACK", "REASONS", "too_deep"]:
        if hasattr(module, name):
            assert getattr(module, name) is getattr(constants, name), (module.__name__, name)


def test_json_lifecycles_share_their_first_states():
    assert (json_events.START, json_events.BOM1, json_events.BOM2) == (0, 1, 2)
    assert ndjson_scanner.START == constants.NDJSON_STATES.index("START") == 0


def _code(source: str) -> str:
    """Source without its docstrings and comments (reasons may be quoted there)."""
    source = re.sub(r'"""(.|\n)*?"""', "", source)
    return "\n".join(line.split("#", 1)[0] for line in source.splitlines())


def test_reason_texts_are_written_once():
    """Every reason text is written in fastingest/constants.py only: no other module
    defines one as a constant or passes one as an error's ``detail`` (they import it;
    the compiled kernels too, and the C code reports codes)."""
    texts = [getattr(constants, name) for name in REASON_NAMES if " " in getattr(constants, name)]
    package = Path(constants.__file__).parent   # the source tree, or an installed wheel
    checked = 0
    for path in sorted(package.glob("**/*")):
        if path.suffix not in (".py", ".pyx", ".pxi", ".pxd", ".h") or path.name == "constants.py":
            continue
        code = _code(path.read_text())
        checked += 1
        for text in texts:
            literal = re.compile(r"""(detail\s*=\s*|^\s*[A-Z_]+\s*=\s*)["']"""
                                 + re.escape(text) + r"""["']""", re.M)
            assert not literal.search(code), (path.name, text)
    assert checked > 20
