"""A published version is immutable, and the pathways schedule only what the library allows."""

import hashlib
import json
from collections.abc import Iterator
from typing import Any

from carehub.instruments.definition import InstrumentDefinition
from carehub.instruments.loader import Library
from carehub.pathways.registry import registry as pathway_registry

# The content of every published version. A change to a published file fails here: publish the
# change as a new version (KEY.vN+1.yaml) and add its fingerprint; never edit this list for a
# version already in use.
PUBLISHED = {
    "block_diary@1": "472d671f1294df67789928ab772e908fb1704a456360310da69be3edd127c869",
    "bpi_interference@1": "84d96f40ce7b89609d875b2c997703e40467380c51bbea7798c5600c8afeb362",
    "bpi_severity@1": "e26a88ae2fbc63f7a6c172bc148ad08f57581e35b4f03eb9010ce469e64f5aed",
    "gad7@1": "947d6e5e9a5ddce3e537654360694714e41854723b6d0dc51d097f6a098005d2",
    "nrs@1": "575bbc0671cc4bb995ee8301045a07cc50b66d4921d3d95a03f6f44a70bb94c8",
    "odi@1": "661bae85dab8086aa10078d8e168d359a6e9443120355d363ec01ff2663ba596",
    "peg@1": "e2cd5b79860fa1f3a030af04d06737ed59122bc38d645ca6f2146731b7c71078",
    "pgic@1": "a673e1b30f353dcff588f7980d7e64139d5293fe8976f42d59d4e97889c0d711",
    "phq9@1": "aa5873b513b53ba80441efe4402288fd9b1018e2f8fa7121a5403f76aafbd939",
    "procedure_safety@1": "e651357600c10f5302045fc26169b68ec968e01337a8865a496a1e33d3fa37a7",
    "psfs@1": "362254e276481b842a9f282cacd1725d3a2daa53fefd339d5c2ad6c4931086fa",
    "trial_diary@1": "c145af39106edeef0df3b4e06deb5707e42652c6c1f72a2efbf2b2725b063e3c",
}


def fingerprint(definition: InstrumentDefinition) -> str:
    canonical = json.dumps(definition.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def test_published_versions_are_unchanged(library: Library) -> None:
    changed = [d.ref for d in library if PUBLISHED.get(d.ref) != fingerprint(d)]
    assert changed == [], (
        "published instrument versions changed (or are new without a fingerprint): publish a "
        "change as a new version"
    )
    assert {d.ref for d in library} == set(PUBLISHED)


def _start_checkins(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        spec = value.get("start_checkins")
        if isinstance(spec, dict):
            yield spec
        for child in value.values():
            yield from _start_checkins(child)
    elif isinstance(value, list):
        for child in value:
            yield from _start_checkins(child)


def test_pathways_schedule_library_instruments_no_more_often_than_allowed(
    library: Library,
) -> None:
    scheduled = []
    for pathway in pathway_registry():
        for spec in _start_checkins(pathway.model_dump()):
            instrument = library.get(spec["instrument"])
            scheduled.append(instrument.key)
            assert spec["every"] >= instrument.min_interval, (pathway.ref, spec)
    assert {"peg", "phq9", "gad7", "pgic", "psfs", "trial_diary"} <= set(scheduled)
