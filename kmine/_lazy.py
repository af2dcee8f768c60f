"""Lazy re-exports for the engine's packages (PEP 562 module ``__getattr__``).

``from kmine.teacher import build_teacher`` works as always, but importing ``kmine.teacher``
(or a light submodule of it, such as ``kmine.teacher.backends`` for the teacher names) no
longer imports every submodule and torch with it: a re-exported name's submodule is imported
the first time the name is asked for. That keeps ``kmine --help`` and the choice lists the
CLI, the API and the UI read from the engine cheap to import.

A lazy package's ``__init__`` names its re-exports twice, in the same order::

    if TYPE_CHECKING:  # what mypy, IDEs and tests/test_architecture.py read
        from kmine.teacher.backends import BACKENDS, build_teacher
    else:  # what runs
        __all__, __getattr__, __dir__ = lazy_exports(__name__, {"backends": ("BACKENDS", "build_teacher")})

``tests/test_cli_help.py`` holds the two equal. The ``__getattr__`` stays out of the type
checker's sight, so a misspelt name is still an error there.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable


def lazy_exports(
    package: str, exports: dict[str, Iterable[str]]
) -> tuple[list[str], Callable[[str], object], Callable[[], list[str]]]:
    """``__all__``, ``__getattr__`` and ``__dir__`` for ``package``, re-exporting the names
    of each of its submodules (``{"backends": ("BACKENDS", …)}``: ``package.backends``)."""
    origin = {name: f"{package}.{submodule}" for submodule, names in exports.items() for name in names}

    def __getattr__(name: str) -> object:
        if name not in origin:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(origin[name]), name)
        setattr(sys.modules[package], name, value)  # later look-ups find it without us
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *origin})

    return list(origin), __getattr__, __dir__
