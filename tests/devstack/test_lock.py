"""Builds install from locks with hashes (requirements/*.txt), and the locks keep up with
pyproject.toml: `make lint` fails when a dependency was added without `make lock`."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from carehub.devstack.lock import LOCKS, check, read_pins
from carehub.devstack.services import REPO_ROOT


def copy_of_the_project(tmp_path: Path) -> Path:
    for name in ("pyproject.toml", *LOCKS, "requirements/build.in"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    return tmp_path


def test_the_locks_satisfy_pyproject() -> None:
    assert check() == []


def test_a_dependency_added_without_make_lock_is_named(tmp_path: Path) -> None:
    root = copy_of_the_project(tmp_path)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    text = text.replace("dependencies = [\n", 'dependencies = [\n  "tablib>=3.5",\n', 1)
    pyproject.write_text(text)
    found = check(root)
    assert "requirements/lock.txt: tablib>=3.5 is not pinned" in found
    assert "requirements/production.txt: tablib>=3.5 is not pinned" in found


def test_a_bound_raised_past_the_pin_is_named(tmp_path: Path) -> None:
    root = copy_of_the_project(tmp_path)
    pins = read_pins((root / "requirements/lock.txt").read_text())
    ((pinned, _),) = pins["django"]
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text().replace('"django>=5.2,<5.3"', '"django>=99"')
    pyproject.write_text(text)
    assert f"requirements/lock.txt: django>=99 but the lock pins django=={pinned}" in check(root)


def test_a_bench_only_dependency_must_be_in_the_bench_lock(tmp_path: Path) -> None:
    root = copy_of_the_project(tmp_path)
    bench = root / "requirements/bench.txt"
    bench.write_text(re.sub(r"(?m)^locust==.*$", "", bench.read_text()))
    assert any(p.startswith("requirements/bench.txt: locust") for p in check(root))
    assert not any(p.startswith("requirements/lock.txt") for p in check(root))


def test_every_pin_carries_hashes() -> None:
    for lock in LOCKS:
        text = (REPO_ROOT / lock).read_text()
        blocks = re.split(r"(?m)^(?=[A-Za-z0-9])", text)
        pinned = [block for block in blocks if "==" in block.split("\n", 1)[0]]
        assert pinned, lock
        for block in pinned:
            assert "--hash=sha256:" in block, block.split("\n", 1)[0]


def test_make_the_dockerfile_install_only_from_the_locks() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"(?m)^\$\(STAMP\): pyproject.toml \$\(LOCK\)$", makefile)
    assert "LOCK   := requirements/lock.txt" in makefile
    assert "--require-hashes" in makefile
    assert "$(PY) -m carehub.devstack.lock" in makefile  # in `make lint`, so in make test / CI
    assert re.search(r"(?m)^lock:", makefile)
    installs = [line for line in makefile.splitlines() if "pip install" in line]
    assert not any("-e '.[" in line for line in installs)  # nothing resolved at install time
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert "pip install --require-hashes --no-deps -r requirements/production.txt" in dockerfile
    assert "pip install --no-deps --no-build-isolation ." in dockerfile
