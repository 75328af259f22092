"""The package's own requirements bring everything its processes import.

The test extras pull in more (pytest needs ``packaging``, for one), so a module that only they
provide imports fine here and fails on a machine that installed the gateway alone. The entry
modules are imported in a fresh interpreter that cannot see any installed distribution outside
the requirements' closure; modules some library only tries (``jsonpointer`` for jsonschema, say)
fall back as they would on such a machine.
"""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

#: What the web process (gunicorn with the shipped worker class), the worker and the CLI load.
ENTRY_MODULES = (
    "gateway.gunicorn_worker",
    "gateway.web",
    "gateway.api.admin",
    "gateway.api.receive",
    "gateway.console",
    "gateway.worker",
    "gateway.cli",
    "gateway.migrate",
    "gateway.targets.salesforce",
)

#: Imports the entry modules with the ``BLOCKED`` top-level modules made unfindable, both to
#: ``import`` and to libraries that ask ``importlib.util.find_spec`` first.
HIDING_IMPORTER = """
import importlib, importlib.util, sys
BLOCKED = frozenset({blocked!r})

def hidden(name):
    return name.partition(".")[0] in BLOCKED

class Hidden:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if hidden(name):
            raise ModuleNotFoundError(f"No module named {{name!r}} (not a requirement)", name=name)
        return None

def find_spec(name, package=None, _found=importlib.util.find_spec):
    return None if hidden(name) else _found(name, package)

sys.meta_path.insert(0, Hidden)
importlib.util.find_spec = find_spec
for module in {modules!r}:
    importlib.import_module(module)
"""


def _requirement_closure(name: str) -> set[str]:
    """``name`` and every distribution its requirements bring, extras asked for included."""
    found: set[tuple[str, frozenset[str]]] = set()
    pending = [(canonicalize_name(name), frozenset[str]())]
    while pending:
        dist, extras = pending.pop()
        if (dist, extras) in found:
            continue
        found.add((dist, extras))
        for text in metadata.requires(dist) or []:
            requirement = Requirement(text)
            if requirement.marker is None or any(
                requirement.marker.evaluate({"extra": extra}) for extra in {"", *extras}
            ):
                pending.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return {dist for dist, _ in found}


def _modules_outside(closure: set[str]) -> set[str]:
    """Top-level modules that only distributions outside ``closure`` provide."""
    return {
        module
        for module, dists in metadata.packages_distributions().items()
        if module != "gateway" and not closure & {canonicalize_name(d) for d in dists}
    }


def test_the_runtime_requirements_bring_every_module_the_processes_import() -> None:
    blocked = sorted(_modules_outside(_requirement_closure("webhook-gateway")))
    script = HIDING_IMPORTER.format(blocked=blocked, modules=ENTRY_MODULES)

    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)

    assert run.returncode == 0, run.stderr[-2000:]
