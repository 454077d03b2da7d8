"""Every message a patient may read has a finished translation in every shipped language, and the
compiled catalogue Django reads matches its source (ADR 0020)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation

from carehub.portal import translations
from carehub.portal.translations import Message


def test_spanish_is_shipped() -> None:
    assert translations.languages() == ["es"]


def test_patient_messages_come_from_templates_modules_and_instrument_texts() -> None:
    found = {m.msgid: m.where for m in translations.patient_messages()}
    assert "Send my answers" in found
    assert found["Send my answers"].startswith("carehub/checkins/templates/")
    assert "Question %(number)s of %(total)s" in found
    assert "mood check-in" in found  # the setting's lazily translated names
    assert "%(clinic)s: your %(name)s is ready. It takes a minute: %(link)s" in found
    assert any(m.startswith("If you are in danger now, call 911.") for m in found)
    assert any(m.startswith("Thank you for telling us.") for m in found)  # PHQ-9 item 9
    keys = {m.key for m in translations.patient_messages()}
    assert ("moderately severe", translations.SCORE_BAND) in keys


@pytest.mark.parametrize("language", translations.languages())
def test_every_patient_message_is_translated(language: str) -> None:
    assert translations.problems(language) == []


@pytest.mark.parametrize("language", translations.languages())
def test_django_serves_the_translations(language: str) -> None:
    for message in translations.patient_messages():
        with translation.override(language):
            if message.context:
                shown = translation.pgettext(message.context, message.msgid)
            else:
                shown = translation.gettext(message.msgid)
        assert shown, message
        # The same text in English is allowed only for formats and numbers ("d M Y").
        if shown == message.msgid:
            assert message.context or not any(
                c.isalpha() for c in message.msgid.replace("%(", "")
            ), message


def test_the_check_finds_an_untranslated_a_fuzzy_and_a_missing_message(tmp_path: Path) -> None:
    catalog = translations.read_catalog("es")
    catalog["Send my answers"].string = ""
    catalog["Back"].flags.add("fuzzy")
    messages = [
        Message("Send my answers", None, "a.html:1"),
        Message("Back", None, "a.html:2"),
        Message("A sentence nobody has translated", None, "a.html:3"),
        Message("Next", None, "a.html:4"),
    ]
    from babel.messages.pofile import write_po

    folder = tmp_path / "es" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with (folder / "django.po").open("wb") as handle:
        write_po(handle, catalog)
    shutil.copy(translations.mo_path("es"), folder / "django.mo")
    original = translations.LOCALE_DIR
    translations.LOCALE_DIR = tmp_path
    try:
        found = translations.problems("es", messages)
    finally:
        translations.LOCALE_DIR = original
    text = "\n".join(found)
    assert "not translated: a.html:1: 'Send my answers'" in text
    assert "fuzzy: a.html:2: 'Back'" in text
    assert "not in the catalogue: a.html:3" in text
    assert "a.html:4" not in text
    assert "differs from its .po" in text  # the .mo still holds the old translations


def test_the_check_finds_placeholders_that_differ() -> None:
    catalog = translations.read_catalog("es")
    entry = catalog["Question %(number)s of %(total)s"]
    entry.string = "Pregunta %(numero)s de %(total)s"
    problems = [error for _entry, errors in catalog.check() for error in errors]
    assert problems


def test_the_command_passes_on_the_shipped_catalogues() -> None:
    call_command("translations", "check")


def test_the_command_fails_when_a_template_gains_an_untranslated_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "new.html").write_text(
        '{% load i18n %}<p>{% translate "A brand new sentence for patients" %}</p>'
    )
    monkeypatch.setattr(
        translations, "PATIENT_TEMPLATE_DIRS", (*translations.PATIENT_TEMPLATE_DIRS, folder)
    )
    with pytest.raises(CommandError, match="1 translation problem"):
        call_command("translations", "check")
