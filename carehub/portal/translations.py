"""The translations of the patient-facing pages and messages (ADR 0020), in pure Python.

One catalogue per language, `carehub/locale/LANG/LC_MESSAGES/django.po`, with its compiled
`django.mo` committed beside it (Django reads the `.mo`). What patients read comes from:

- the templates under `PATIENT_TEMPLATE_DIRS` (`{% translate %}`, `{% blocktranslate %}`);
- `gettext` calls in `PATIENT_MODULES`;
- texts whose English wording is itself the msgid (`dynamic_messages`): the clinic's patient
  texts (crisis resources, emergency help), the instruments' red-flag messages to patients, the
  score bands "My progress" names and the pathways' notices to patients (`notify` to
  `patient`).

`manage.py translations check` lists every such message without a finished translation (missing,
empty or fuzzy, or placeholders that differ) and a `.mo` older than its `.po`;
`manage.py translations update` adds new messages to every catalogue (empty, to translate);
`manage.py translations compile` writes the `.mo` files. These need Babel (the `dev` extra);
the running application does not.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.translation.template import templatize

from carehub.instruments.registry import instruments
from carehub.instruments.texts import PATIENT_TEXTS
from carehub.pathways.registry import registry
from carehub.portal.selectors import PROGRESS_INSTRUMENTS

if TYPE_CHECKING:
    from babel.messages.catalog import Catalog

ROOT = Path(settings.BASE_DIR)
LOCALE_DIR = ROOT / "carehub" / "locale"
DOMAIN = "django"
PATIENT_TEMPLATE_DIRS = (
    ROOT / "carehub" / "checkins" / "templates",
    ROOT / "carehub" / "portal" / "templates",
)
PATIENT_MODULES = (
    ROOT / "carehub" / "instruments" / "catalogue.py",
    ROOT / "carehub" / "checkins" / "answering.py",
    ROOT / "carehub" / "checkins" / "instruments.py",
    ROOT / "carehub" / "checkins" / "messages.py",
    ROOT / "carehub" / "checkins" / "views.py",
    ROOT / "carehub" / "portal" / "pathway_texts.py",
    ROOT / "carehub" / "portal" / "selectors.py",
    ROOT / "carehub" / "portal" / "views.py",
)
KEYWORDS = {
    "_": None,
    "gettext": None,
    "gettext_lazy": None,
    "pgettext": ((1, "c"), 2),
    "pgettext_lazy": ((1, "c"), 2),
    "ngettext": (1, 2),
    "ngettext_lazy": (1, 2),
    "npgettext": ((1, "c"), 2, 3),
}
SCORE_BAND = "score band"


@dataclass(frozen=True)
class Message:
    msgid: str
    context: str | None
    where: str

    @property
    def key(self) -> tuple[str, str | None]:
        return self.msgid, self.context


def languages() -> list[str]:
    """The languages patients' pages are translated into (every one but English)."""
    return [code for code, _name in settings.LANGUAGES if code != "en"]


def po_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def mo_path(language: str) -> Path:
    return po_path(language).with_suffix(".mo")


def _where(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _extract(source: str, where: str) -> Iterator[Message]:
    from babel.messages.extract import extract_python

    found = extract_python(io.BytesIO(source.encode()), KEYWORDS, [], {"encoding": "utf-8"})
    for line, _function, args, _comments in found:
        if isinstance(args, tuple):
            strings = [a for a in args if a is not None]
            context = None
            if _function in ("pgettext", "pgettext_lazy", "npgettext") and len(args) >= 2:
                context, strings = args[0], [a for a in args[1:] if a is not None]
            for text in strings[:2] if _function.startswith(("n", "npg")) else strings[:1]:
                if text:
                    yield Message(text, context, f"{where}:{line}")
        elif args:
            assert isinstance(args, str)  # babel gives one message as a string
            yield Message(args, None, f"{where}:{line}")


def template_messages() -> Iterator[Message]:
    for folder in PATIENT_TEMPLATE_DIRS:
        for path in sorted(folder.rglob("*.html")):
            python = templatize(path.read_text(encoding="utf-8"), origin=str(path))
            yield from _extract(python, _where(path))


def module_messages() -> Iterator[Message]:
    for path in PATIENT_MODULES:
        yield from _extract(path.read_text(encoding="utf-8"), _where(path))


def _notices_to_patients() -> Iterator[Message]:
    """The `notify` effects of the published pathway definitions that go to the patient."""
    for definition in sorted(registry(), key=lambda d: (d.key, d.version)):
        where = f"pathway {definition.key} v{definition.version}"
        for track_name, track in definition.tracks.items():
            effects = [
                e for state in track.states.values() for e in (*state.on_enter, *state.on_exit)
            ]
            effects += [e for transition in track.transitions for e in transition.effects]
            for effect in effects:
                if effect.notify is not None and "patient" in effect.notify.to:
                    yield Message(effect.notify.message, None, f"{where}, track {track_name}")


def dynamic_messages() -> Iterator[Message]:
    """Texts translated with their English wording as the msgid (not in a gettext call)."""
    yield from _notices_to_patients()

    for name, entry in PATIENT_TEXTS.items():
        yield Message(entry.text, None, f"carehub/instruments/texts.py ({name})")
    for definition in instruments():
        where = f"carehub/instruments/library/{definition.key}.v{definition.version}.yaml"
        for rule in definition.red_flags:
            if rule.patient_message:
                yield Message(rule.patient_message, None, f"{where} ({rule.code})")
        if definition.key in PROGRESS_INSTRUMENTS and definition.bands is not None:
            for level in definition.bands.levels:
                yield Message(level.label, SCORE_BAND, f"{where} (bands)")


def patient_messages() -> list[Message]:
    """Every message patients may read, once per (msgid, context), in a stable order."""
    seen: dict[tuple[str, str | None], Message] = {}
    for message in (*template_messages(), *module_messages(), *dynamic_messages()):
        seen.setdefault(message.key, message)
    return list(seen.values())


def read_catalog(language: str) -> Catalog:
    from babel.messages.pofile import read_po

    with po_path(language).open("rb") as handle:
        return read_po(handle, locale=language, domain=DOMAIN)


def problems(language: str, messages: Iterable[Message] | None = None) -> list[str]:
    """Every message patients may read that the language's catalogue does not translate (missing,
    empty, fuzzy or with other placeholders), and a compiled catalogue that differs from it."""
    catalog = read_catalog(language)
    found: list[str] = []
    for message in messages if messages is not None else patient_messages():
        entry = catalog.get(message.msgid, context=message.context)
        label = f"{message.where}: {message.msgid!r}" + (
            f" (context {message.context!r})" if message.context else ""
        )
        if entry is None:
            found.append(f"{language}: not in the catalogue: {label}")
        elif entry.fuzzy:
            found.append(f"{language}: fuzzy: {label}")
        elif not (entry.string if isinstance(entry.string, str) else all(entry.string or ())):
            found.append(f"{language}: not translated: {label}")
    for entry, errors in catalog.check():
        for error in errors:
            found.append(f"{language}: {entry.id!r}: {error}")
    found.extend(f"{language}: {problem}" for problem in compiled_problems(language, catalog))
    return found


def _translations(catalog: Catalog) -> dict[str, str]:
    """The catalogue as the `.mo` holds it: `context\\x04msgid` → translation, finished ones."""
    table: dict[str, str] = {}
    for entry in catalog:
        if not entry.id or entry.fuzzy or not isinstance(entry.id, str):
            continue
        if isinstance(entry.string, str) and entry.string:
            key = f"{entry.context}\x04{entry.id}" if entry.context else entry.id
            table[key] = entry.string
    return table


def compiled_problems(language: str, catalog: Catalog | None = None) -> list[str]:
    catalog = catalog if catalog is not None else read_catalog(language)
    path = mo_path(language)
    if not path.is_file():
        return [f"{_where(path)} is missing: run `manage.py translations compile`"]
    with path.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    held = {k: v for k, v in compiled._catalog.items() if k}  # type: ignore[attr-defined]
    if held != _translations(catalog):
        return [f"{_where(path)} differs from its .po: run `manage.py translations compile`"]
    return []


def compile_catalogs() -> list[Path]:
    from babel.messages.mofile import write_mo

    written = []
    for language in languages():
        catalog = read_catalog(language)
        with mo_path(language).open("wb") as handle:
            write_mo(handle, catalog, use_fuzzy=False)
        written.append(mo_path(language))
    return written


def update_catalogs() -> dict[str, int]:
    """Add every patient message missing from each catalogue (untranslated) and drop the ones
    no longer used; returns how many each catalogue lacks a translation for."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    template = Catalog(domain=DOMAIN, project="carehub", charset="utf-8")
    for message in patient_messages():
        flags = ["python-format"] if "%(" in message.msgid else []
        template.add(
            message.msgid, locations=[(message.where, 0)], context=message.context, flags=flags
        )
    missing: dict[str, int] = {}
    for language in languages():
        path = po_path(language)
        if path.is_file():
            catalog = read_catalog(language)
        else:
            from babel.messages.catalog import Catalog as NewCatalog

            path.parent.mkdir(parents=True, exist_ok=True)
            catalog = NewCatalog(locale=language, domain=DOMAIN, project="carehub")
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        with path.open("wb") as handle:
            write_po(handle, catalog, width=100, omit_header=False, include_lineno=False)
        missing[language] = sum(1 for entry in catalog if entry.id and not entry.string)
    return missing
