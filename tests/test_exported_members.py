"""``__all__`` of each public package lists exactly the public names it provides.

Like httpx's test of the same name: re-exporting a new name without adding it
to ``__all__`` (or leaving a stale entry behind) fails here.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

import pytest

PACKAGES = [
    "enduro",
    "enduro.store",
    "enduro.session",
    "enduro.recovery",
    "enduro.stress",
    "enduro.stress.site",
    "enduro.report",
]


def _from_enduro(module: ModuleType, name: str, value: object) -> bool:
    """Whether ``value`` was defined in enduro (not imported from a third party).

    Classes and functions say where they were defined. Other values (constants,
    type aliases) count when some other enduro module lists them in its
    ``__all__`` as the very same object, or when ``module`` itself defines them.
    """
    defined_in = getattr(value, "__module__", None)
    if isinstance(defined_in, str) and (defined_in == "enduro" or defined_in.startswith("enduro.")):
        return True
    for other_name, other in list(sys.modules.items()):
        if other is module or not other_name.startswith("enduro.") or other is None:
            continue
        if name in getattr(other, "__all__", ()) and getattr(other, name, None) is value:
            return True
    return defined_in is None


def _public_names(module: ModuleType) -> set[str]:
    lazy = set(getattr(module, "_LAZY", {}))  # loaded on first use (PEP 562)
    return lazy | {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, ModuleType)
        and _from_enduro(module, name, value)
    }


@pytest.mark.parametrize("package", PACKAGES)
def test_all_lists_exactly_the_public_names(package: str) -> None:
    module = importlib.import_module(package)
    exported = list(getattr(module, "__all__", []))

    assert len(exported) == len(set(exported)), f"{package}.__all__ has duplicates"
    missing = [name for name in exported if not hasattr(module, name)]
    assert missing == [], f"{package}.__all__ names what it does not define"
    assert set(exported) == _public_names(module)
