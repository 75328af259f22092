"""Load one bench script (they have no ``.py`` suffix) from another, to share its pieces."""

from __future__ import annotations

import importlib.util
import sys
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parent


def load_script(name: str) -> ModuleType:
    """``bench/<name>`` as the module ``bench_<name>``, run once per process."""
    module_name = f"bench_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    loader = SourceFileLoader(module_name, str(BENCH / name))
    spec = importlib.util.spec_from_loader(module_name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    loader.exec_module(module)
    return module
