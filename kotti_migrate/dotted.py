"""Whether a dotted name (``pkg.mod.attr``, ``pkg.mod:attr``) can be imported, told without importing it.

The light load (:mod:`kotti_migrate.loading`) checks Kotti's dotted
settings this way: the full load imports them (about 1 s), pserve too.
"""

from __future__ import annotations

import sys
from typing import Any


def importable(dotted: str) -> bool:
    """False when ``dotted`` (``pkg.mod.attr``, ``pkg.mod:attr``) looks unresolvable.

    Looked up without importing anything (importing Kotti's views and
    content types is what the light load saves): a module already imported
    is looked into, any other one only found (``find_spec`` with its
    package's folders).  An attribute of a module not imported counts when
    the module's source mentions it (or star-imports, or has a module
    ``__getattr__``).  False may be wrong (an attribute set from elsewhere):
    the caller then does what resolves the name for sure (the full load).
    """
    module, colon, attrs = dotted.partition(":")
    parts = module.split(".")
    if not all(parts) or (colon and not all(attrs.split("."))):
        return False  # relative or malformed: the full load reports it
    obj: Any = None  # the module imported (or the object) reached so far
    spec: Any = None  # else: the module found so far, not imported
    for number, part in enumerate(parts):
        name = ".".join(parts[: number + 1])
        if name in sys.modules:
            obj, spec = sys.modules[name], None
            continue
        if obj is not None:  # as Pyramid's resolver: an attribute, else a submodule
            if not colon and hasattr(obj, part):
                obj = getattr(obj, part)
                if not isinstance(obj, type(sys)):
                    return True  # an object: what follows are its attributes
                continue
            path = getattr(obj, "__path__", None)
            if path is None:
                return False  # neither an attribute nor a submodule
        else:
            path = spec.submodule_search_locations if spec is not None else None
            if number and path is None:  # an attribute of a module not imported
                return not colon and _mentions(spec, part)
        found = find_spec(name, path)
        if found is None:  # not a module; without a colon maybe an attribute of a package not imported
            return not colon and obj is None and number > 0 and _mentions(spec, part)
        obj, spec = None, found
    first = attrs.split(".")[0]
    if colon and obj is not None:
        return hasattr(obj, first)
    return not colon or _mentions(spec, first)


def find_spec(name: str, path: Any = None) -> Any:
    """The spec of module ``name`` (``path``: its package's folders), as the import system finds it.

    Unlike ``importlib.util.find_spec``, the parent package is not imported.
    """
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        spec = find(name, path) if find is not None else None
        if spec is not None:
            return spec
    return None


def _mentions(spec: Any, name: str) -> bool:
    """True unless the source of the module of ``spec`` surely defines no attribute ``name``."""
    try:
        source = spec.loader.get_source(spec.name)
    except Exception:  # no loader, or one that cannot give the source: cannot tell
        return True
    if source is None or "import *" in source or "\ndef __getattr__(" in f"\n{source}":  # a module's
        return True
    at = source.find(name)
    while at >= 0:  # as a word (str.find is much quicker than a regular expression's \b)
        around = source[at - 1 : at] + source[at + len(name) : at + len(name) + 1]
        if not any(char.isalnum() or char == "_" for char in around):
            return True
        at = source.find(name, at + 1)
    return False
