"""Fixtures for the instrument library: the shipped library, loaded without Django."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from carehub.instruments import registry as registry_module
from carehub.instruments.definition import InstrumentDefinition
from carehub.instruments.loader import Library, load_directories

LIBRARY_DIR = Path(__file__).resolve().parents[3] / "carehub" / "instruments" / "library"


@pytest.fixture(scope="session")
def library() -> Library:
    return load_directories([LIBRARY_DIR])


@pytest.fixture(scope="session")
def get(library: Library) -> Callable[[str], InstrumentDefinition]:
    return library.get


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    """The registry's cache cleared before and after, for tests that change its settings."""
    registry_module.library.cache_clear()
    yield
    registry_module.library.cache_clear()
