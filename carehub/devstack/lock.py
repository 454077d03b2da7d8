"""Check that the locks in requirements/ satisfy pyproject.toml: `python -m carehub.devstack.lock`.

`make lint` (so `make test` and CI) runs it: a dependency added to or tightened in
pyproject.toml without `make lock` fails here, naming the package, before anything installs a
build that differs from what was tested. Each lock must pin every requirement of the extras it is
made for (dependencies of dependencies are uv's business) at a version the requirement allows.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from carehub.devstack.services import REPO_ROOT

# Each lock and the extras of pyproject.toml it is made for (see the Makefile's `lock` target).
LOCKS: Mapping[str, Sequence[str]] = {
    "requirements/lock.txt": ("dev", "embedded"),
    "requirements/production.txt": (),
    "requirements/bench.txt": ("dev", "embedded", "bench"),
}
BUILD_REQUIREMENTS = "requirements/build.in"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\#]+?))?\s*\\?\s*$")


def read_pins(text: str) -> dict[str, list[tuple[str, str | None]]]:
    """name -> [(version, marker or None)] of every `name==version [; marker]` line."""
    pins: dict[str, list[tuple[str, str | None]]] = {}
    for line in text.splitlines():
        if match := PIN.match(line.strip()):
            name, version, marker = match.groups()
            pins.setdefault(canonicalize_name(name), []).append((version, marker))
    return pins


def requirements_of(pyproject: Mapping[str, object], extras: Iterable[str]) -> list[Requirement]:
    project = pyproject["project"]
    assert isinstance(project, dict)
    found = [Requirement(text) for text in project.get("dependencies", [])]
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        found += [Requirement(text) for text in optional.get(extra, [])]
    return found


def problems(
    requirements: Iterable[Requirement], pins: Mapping[str, list[tuple[str, str | None]]]
) -> list[str]:
    """What the lock lacks: requirements (for this interpreter) it pins not at all or wrongly."""
    environment = {key: str(value) for key, value in default_environment().items()}
    found = []
    for requirement in requirements:
        if requirement.marker and not requirement.marker.evaluate(environment):
            continue
        versions = pins.get(canonicalize_name(requirement.name), [])
        if not versions:
            found.append(f"{requirement} is not pinned")
            continue
        wrong = [v for v, _ in versions if not requirement.specifier.contains(v, prereleases=True)]
        if wrong:
            found.append(f"{requirement} but the lock pins {requirement.name}=={wrong[0]}")
    return found


def check(root: Path = REPO_ROOT) -> list[str]:
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    build = [
        Requirement(line)
        for line in (root / BUILD_REQUIREMENTS).read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    found = []
    for lock, extras in LOCKS.items():
        path = root / lock
        if not path.exists():
            found.append(f"{lock}: missing")
            continue
        pins = read_pins(path.read_text(encoding="utf-8"))
        for problem in problems([*requirements_of(pyproject, extras), *build], pins):
            found.append(f"{lock}: {problem}")
    return found


def main() -> int:
    found = check()
    for problem in found:
        print(f"lock: {problem}", file=sys.stderr)
    if found:
        print(
            "lock: pyproject.toml changed: run `make lock` and commit requirements/",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
