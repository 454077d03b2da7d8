"""`manage.py instrument validate|list|show`: the instrument library from the command line."""

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from carehub.core.management.definition_files import add_validate_parser, validate_files
from carehub.instruments.definition import InstrumentDefinition, duration_text
from carehub.instruments.loader import UnknownInstrument, check_file
from carehub.instruments.registry import library


class Command(BaseCommand):
    help = "Validate, list and show instrument definitions."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add_validate_parser(sub)
        sub.add_parser("list", help="List the published instruments.")
        show = sub.add_parser("show", help="Show one published instrument.")
        show.add_argument("key")
        show.add_argument("--version", type=int, dest="instrument_version", default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "validate":
            self.validate(options["files"])
        elif action == "list":
            for d in library():
                self.stdout.write(
                    f"{d.key}  v{d.version}  {d.licence}  {d.title}  "
                    f"[recall: {d.recall.text}; at most every {duration_text(d.min_interval)}]"
                )
        else:
            self.show(options["key"], options["instrument_version"])

    def validate(self, files: list[Path]) -> None:
        validate_files(self, files, check_file, noun="instrument")

    def show(self, key: str, version: int | None) -> None:
        try:
            definition = library().get(key, version)
        except UnknownInstrument as exc:
            known = ", ".join(sorted(library().keys())) or "none"
            raise CommandError(f"{exc} (published: {known})") from exc
        for line in describe(definition):
            self.stdout.write(line)


def describe(d: InstrumentDefinition) -> list[str]:
    s = d.scoring
    lines = [
        f"{d.ref}: {d.title}",
        f"  for patients: {d.description}",
        f"  licence: {d.licence}; administered by {d.administration}",
        f"  citation: {d.citation}",
        f"  recall: {d.recall.text} ({duration_text(d.recall.period)}); "
        f"at most every {duration_text(d.min_interval)}",
        f"  direction: {d.direction}",
    ]
    if d.has_total:
        lines.append(
            f"  score: {s.rule}, {s.minimum:g} to {s.maximum:g}, {s.decimals} decimal(s)"
            if s.minimum is not None and s.maximum is not None
            else f"  score: {s.rule}"
        )
    else:
        lines.append("  score: none (checklist)")
    if s.missing is not None:
        lines.append(f"  missing items allowed: {s.missing.max_missing} ({s.missing.source})")
    if d.bands is not None:
        levels = ", ".join(
            f"{'>=' if level.at_least is not None else '>'}{level.lower:g} {level.label}"
            for level in d.bands.levels
        )
        lines.append(f"  bands: {levels} ({d.bands.source})")
    if d.mcid is not None:
        parts = [
            f"{d.mcid.points:g} points" if d.mcid.points is not None else "",
            f"{d.mcid.percent:g} %" if d.mcid.percent is not None else "",
            f"answer <= {d.mcid.at_most}" if d.mcid.at_most is not None else "",
        ]
        lines.append(f"  MCID: {' or '.join(p for p in parts if p)} ({d.mcid.source})")
    codes = [
        f"panel {d.loinc.panel}" if d.loinc.panel else "",
        f"total {d.loinc.total}" if d.loinc.total else "",
    ]
    if any(codes):
        lines.append(f"  LOINC: {', '.join(c for c in codes if c)}")
    if d.licence == "licensed":
        lines.append("  items: none (licensed: staff enter the score from the licensed form)")
    for item in d.items:
        flags = [] if item.scored else ["not scored"]
        if item.optional:
            flags.append("optional")
        extra = f" [{', '.join(flags)}]" if flags else ""
        lines.append(f"  - {item.key} ({item.type}){extra}: {item.text}")
    for rule in d.red_flags:
        target = rule.item or "total"
        if rule.missing:
            condition = f"{target} unanswered"
        elif rule.at_least is not None:
            condition = f"{target} >= {rule.at_least:g}"
        else:
            condition = f"{target} = {rule.equals}"
        lines.append(f"  red flag {rule.code}: {condition} -> {rule.urgency}")
    if d.wording_note:
        lines.append(f"  wording note: {d.wording_note}")
    return lines
