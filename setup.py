"""Build the Cython core unless FASTINGEST_PUREPYTHON=1 (then the pure-Python twins are used).

FASTINGEST_ANNOTATE=1 writes Cython's HTML annotation next to each module;
FASTINGEST_SANITIZE=1 compiles with AddressSanitizer + UndefinedBehaviorSanitizer
(any other value is used as the -fsanitize list).
"""
import glob
import os

from setuptools import Extension, setup


def extensions():
    if os.environ.get("FASTINGEST_PUREPYTHON"):
        return []
    from Cython.Build import cythonize

    compile_args = ["-O3"]
    link_args = []
    sanitize = os.environ.get("FASTINGEST_SANITIZE")
    if sanitize:
        # "1": ASan + UBSan; otherwise the -fsanitize list itself (e.g. "address,fuzzer-no-link"
        # with CC=clang, for native coverage under atheris: tests/fuzz/native.sh)
        which = "address,undefined" if sanitize == "1" else sanitize
        flags = [f"-fsanitize={which}", "-fno-omit-frame-pointer", "-O1", "-g"]
        compile_args = flags
        link_args = flags
    # Every fastingest/**/_X.pyx is the extension fastingest...._X; its .pxi parts and the
    # C helpers (.h, found in any folder that holds one) are its dependencies.
    headers = sorted(glob.glob("fastingest/**/*.h", recursive=True))
    parts = sorted(glob.glob("fastingest/**/*.pxi", recursive=True))
    include_dirs = sorted({os.path.dirname(h) for h in headers})
    modules = [
        Extension(
            path[:-4].replace("/", "."),
            [path],
            include_dirs=include_dirs,
            depends=headers + parts,
            extra_compile_args=compile_args,
            extra_link_args=link_args,
        )
        for path in sorted(glob.glob("fastingest/**/_*.pyx", recursive=True))
    ]
    return cythonize(
        modules,
        language_level=3,
        annotate=bool(os.environ.get("FASTINGEST_ANNOTATE")),
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            "embedsignature": True,
        },
    )


setup(ext_modules=extensions())
