"""Loading definitions: every problem reported with its path and line; the library's rules."""

from pathlib import Path

import pytest

from carehub.instruments.loader import (
    InstrumentDefinitionError,
    Library,
    LibraryError,
    UnknownInstrument,
    check_file,
    check_text,
    load_directories,
    load_text,
)

from .samples import TOY


def messages(text: str) -> list[str]:
    _, problems = check_text(text)
    return [str(p) for p in problems]


def line_of(text: str, fragment: str) -> int:
    return next(n for n, row in enumerate(text.splitlines(), 1) if fragment in row)


def test_the_toy_definition_is_valid() -> None:
    definition = load_text(TOY)
    assert definition.ref == "toy@1"


def test_shape_problems_are_all_reported_with_their_lines() -> None:
    text = TOY.replace("licence: free", "licence: open").replace(
        "direction: lower_is_better", "direction: lower_is_better\ncolour: blue"
    )
    found = messages(text)
    assert any(m.startswith(f"line {line_of(text, 'licence')}: licence:") for m in found)
    assert f"line {line_of(text, 'colour')}: colour: unknown key" in found


def test_meaning_problems_are_all_reported_together() -> None:
    text = (
        TOY.replace("maximum: 12", "maximum: 15")
        .replace("{at_least: 6, label: high}", "{at_least: -1, label: high}")
        .replace("min_interval: 7d", "min_interval: 3d")
        + "loinc: {panel: 44249-2}\n"
        + "red_flags:\n"
        + "  - {code: x, item: zz, at_least: 1, urgency: immediate, staff_message: m}\n"
        + "  - {code: y, item: a, at_least: 3, urgency: soon, staff_message: m}\n"
    )
    found = messages(text)
    # The shape problem (an unknown urgency) is reported first; fix it to see the rest.
    assert any("red_flags[1].urgency" in m for m in found)
    found = messages(text.replace("urgency: soon", "urgency: same_day"))
    joined = "\n".join(found)
    assert "the items give a sum from 0 to 12, not 0 to 15" in joined
    assert "bands.levels[1]: bands must ascend" in joined
    assert "min_interval: 3d is shorter than the recall period (1w)" in joined
    assert "loinc.panel: LOINC code 44249-2 fails its check digit" in joined
    assert "red_flags[0].item: unknown item 'zz'" in joined
    assert f"line {line_of(text, 'code: x')}: red_flags[0].item" in joined


def test_a_licensed_instrument_may_not_carry_items_or_wording() -> None:
    text = TOY.replace("licence: free", "licence: licensed").replace(
        "direction: lower_is_better", "direction: lower_is_better\ninstructions: Read this"
    )
    joined = "\n".join(messages(text))
    assert "items: a licensed instrument has no items" in joined
    assert "instructions: a licensed instrument carries none of its wording" in joined
    assert "administration: a licensed instrument is entered by staff" in joined
    assert "scoring.rule: a licensed instrument's score is 'entered'" in joined


def test_red_flag_conditions_and_texts_are_checked() -> None:
    text = TOY + (
        "red_flags:\n"
        "  - {code: a, item: a, at_least: 1, equals: 2, urgency: immediate, staff_message: m}\n"
        "  - {code: b, equals: true, urgency: same_day, staff_message: m}\n"
        "  - {code: c, item: a, equals: true, urgency: same_day, staff_message: m}\n"
        "  - {code: d, item: a, missing: true, urgency: same_day, staff_message: m,\n"
        "     patient_message: 'Call {hotline}'}\n"
    )
    joined = "\n".join(messages(text))
    assert "red_flags[0]: give exactly one of 'at_least', 'equals', 'missing'" in joined
    assert "red_flags[1]: a condition on the total uses 'at_least'" in joined
    assert "red_flags[2].equals: 'a' cannot be True" in joined
    assert "red_flags[3].patient_message: unknown text '{hotline}'" in joined


def test_invalid_yaml_and_duplicate_keys_are_reported_with_their_line() -> None:
    found = messages("key: toy\nversion: 1\n  title: [unclosed\n")
    assert found[0].startswith("line ")
    assert "not valid YAML" in found[0]
    text = TOY.replace("title: Toy scale", "title: Toy scale\ntitle: Again")
    assert f"line {line_of(text, 'title: Again')}: title: duplicate key" in messages(text)


def test_an_empty_document_is_a_problem() -> None:
    assert messages("") == ["line 1: (top level): the document is empty"]
    assert messages("- a list\n") == ["line 1: (top level): an instrument definition is a mapping"]


def test_yaml_anchors_and_merge_keys_are_resolved() -> None:
    text = TOY.replace(
        "  - {key: b, text: Question B, type: scale, minimum: 0, maximum: 4}",
        "  - &b {key: b, text: Question B, type: scale, minimum: 0, maximum: 4}",
    ).replace(
        "  - {key: c, text: Question C, type: scale, minimum: 0, maximum: 4}",
        "  - {<<: *b, key: c, text: Question C}",
    )
    definition = load_text(text)
    assert [i.key for i in definition.items] == ["a", "b", "c"]


def test_load_text_raises_with_every_problem() -> None:
    with pytest.raises(InstrumentDefinitionError) as raised:
        load_text(TOY.replace("rule: sum", "rule: median"), source="toy.yaml")
    assert raised.value.source == "toy.yaml"
    assert "toy.yaml:line" in str(raised.value)


def test_library_files_are_named_after_their_key_and_version(tmp_path: Path) -> None:
    (tmp_path / "toy.yaml").write_text(TOY)
    _, problems = check_file(tmp_path / "toy.yaml", require_name=True)
    assert [p.message for p in problems] == ["the file must be named toy.v1.yaml"]
    with pytest.raises(LibraryError) as raised:
        load_directories([tmp_path])
    assert raised.value.errors[0].source.endswith("toy.yaml")


def test_a_key_and_version_is_published_once(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "toy.v1.yaml").write_text(TOY)
    (second / "toy.v1.yaml").write_text(TOY.replace("Toy scale", "Toy scale, edited"))
    with pytest.raises(LibraryError, match="toy@1 is already published by"):
        load_directories([first, second])


def test_the_library_serves_the_latest_version_unless_asked(tmp_path: Path) -> None:
    (tmp_path / "toy.v1.yaml").write_text(TOY)
    (tmp_path / "toy.v2.yaml").write_text(TOY.replace("version: 1", "version: 2"))
    library = load_directories([tmp_path])
    assert library.get("toy").version == 2
    assert library.get("toy", 1).version == 1
    assert [d.ref for d in library.latest()] == ["toy@2"]
    with pytest.raises(UnknownInstrument, match="no instrument 'toy' version 3"):
        library.get("toy", 3)
    with pytest.raises(UnknownInstrument, match="no instrument 'nope'"):
        library.get("nope")
    assert len(Library([library.get("toy")])) == 1
