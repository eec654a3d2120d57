"""constraints.txt locks the whole environment; requirements.txt's pins agree with it, and what is installed is it."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .conftest import ROOT


def pinned(path) -> dict[str, str]:
    """``{package: version}`` for every ``name==version`` line of a requirements or constraints file that applies here."""
    pins = {}
    for line in (ROOT / path).read_text().splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{path}: {line!r} is not an exact pin"
        pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def test_the_lock_pins_every_requirement_at_the_same_version():
    requirements, lock = pinned("requirements.txt"), pinned("constraints.txt")
    if not lock:
        pytest.skip("constraints.txt locks CPython 3.11 only; on this Python, requirements.txt's pins hold alone")
    assert {name: lock.get(name) for name in requirements} == requirements


def test_the_installed_environment_is_the_locked_one():
    lock = pinned("constraints.txt")
    if not lock:
        pytest.skip("constraints.txt locks CPython 3.11 only; on this Python, requirements.txt's pins hold alone")
    installed = {}
    for name in lock:
        try:
            installed[name] = version(name)
        except PackageNotFoundError:
            installed[name] = None
    assert installed == lock, "run `make setup` again, or `make lock` if requirements.txt changed"
