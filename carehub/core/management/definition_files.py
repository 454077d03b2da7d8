"""`validate` of the definition commands (`manage.py instrument|pathway validate`): each file
checked, its problems written, and the command failed if any file had one."""

from argparse import ArgumentParser, _SubParsersAction
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from django.core.management.base import BaseCommand, CommandError


def add_validate_parser(sub: "_SubParsersAction[ArgumentParser]") -> None:
    """The `validate FILE...` sub-command."""
    validate = sub.add_parser("validate", help="Check definition files; exit 1 on any problem.")
    validate.add_argument("files", nargs="+", type=Path)


class Definition(Protocol):
    @property
    def ref(self) -> str: ...


def validate_files(
    command: BaseCommand,
    files: Sequence[Path],
    check: Callable[[Path], tuple[Definition | None, Sequence[Any]]],
    *,
    noun: str,
) -> None:
    """`check(path)` gives the definition a file holds (None if unreadable) and its problems;
    raises CommandError naming how many of the files (`noun` files) have problems."""
    failed = 0
    for path in files:
        if not path.is_file():
            command.stderr.write(f"{path}: no such file")
            failed += 1
            continue
        definition, problems = check(path)
        if problems:
            failed += 1
            for problem in problems:
                command.stderr.write(f"{path}:{problem}")
            command.stderr.write(f"{path}: {len(problems)} problem(s)")
        else:
            assert definition is not None
            command.stdout.write(f"{path}: {definition.ref} is valid")
    if failed:
        raise CommandError(f"{failed} of {len(files)} {noun} file(s) have problems")
