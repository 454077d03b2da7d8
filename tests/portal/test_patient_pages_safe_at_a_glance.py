"""The patient pages at a glance: one name per instrument (message and page), the clinic named
and its number to call, Log out in the portal, `/favicon.ico`, Enter not sending a partial
check-in, and every page and message in the patient's language (English or Spanish)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client

from carehub.checkins.models import CheckinStatus
from carehub.clinics.models import Clinic
from carehub.messaging.models import Message
from carehub.pathways.models import Enrolment
from carehub.patients.models import Language, Patient
from tests.support.patients import Clinicians, open_checkin, patient_user, send_link

pytestmark = pytest.mark.django_db

PHONE = "+16175550142"
PEG = {"pain": "6", "enjoyment": "5", "activity": "4"}


def client_for(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def clinic(team: Clinicians) -> Clinic:
    Clinic.objects.filter(pk=team.clinic.pk).update(name="Riverside Pain Clinic", phone=PHONE)
    team.clinic.refresh_from_db()
    return team.clinic


def spanish(enrolment: Enrolment) -> Enrolment:
    Patient.objects.filter(pk=enrolment.patient_id).update(language=Language.SPANISH)
    enrolment.patient.refresh_from_db()
    return enrolment


def h1(body: str) -> str:
    found = re.search(r"<h1[^>]*>(.*?)</h1>", body, re.S)
    assert found, body
    return re.sub(r"\s+", " ", found.group(1)).strip()


def request_body(checkin_pk: int) -> str:
    return Message.objects.get(purpose="checkin_request", subject_key=f"checkin:{checkin_pk}").body


# --- one name per instrument, the clinic named, its number --------------------------------------


def test_the_link_page_is_headed_with_the_name_the_message_used_and_names_the_clinic(
    clinic: Clinic, enrolment: Enrolment
) -> None:
    checkin = open_checkin(enrolment, "phq9")
    body = request_body(checkin.pk)
    assert body.startswith("Riverside Pain Clinic: your mood check-in is ready.")
    page = Client().get(f"/c/{send_link(checkin)}").content.decode()
    assert h1(page) == "Mood check-in"
    assert "PHQ-9 (Patient Health Questionnaire" not in h1(page)
    assert '<p class="clinic-name">Riverside Pain Clinic</p>' in page
    assert "<title>Mood check-in · Riverside Pain Clinic</title>" in page


def test_a_closed_link_says_which_clinic_to_call_and_its_number(
    clinic: Clinic, enrolment: Enrolment
) -> None:
    checkin = open_checkin(enrolment)
    token = send_link(checkin)
    assert Client().post(f"/c/{token}", PEG).status_code == 200
    gone = Client().get(f"/c/{token}")
    assert gone.status_code == 410
    body = gone.content.decode()
    assert f'call Riverside Pain Clinic on <a href="tel:{PHONE}">{PHONE}</a>' in body


def test_the_portal_gives_the_clinics_number_and_a_log_out(
    clinic: Clinic, enrolment: Enrolment
) -> None:
    client = client_for(patient_user(enrolment))
    home = client.get("/me/").content.decode()
    assert f'call Riverside Pain Clinic on <a href="tel:{PHONE}">{PHONE}</a>' in home
    assert 'action="/me/logout/"' in home
    assert ">Log out</button>" in home
    following = client.get("/me/next/").content.decode()
    assert f'<a href="tel:{PHONE}">' in following

    assert client.get("/me/logout/").status_code == 405  # a link cannot log anyone out
    out = client.post("/me/logout/")
    assert out.status_code == 200
    assert "You are logged out" in out.content.decode()
    assert SESSION_KEY not in client.session
    assert client.get("/me/").status_code == 302  # to the login page


def test_without_a_number_the_portal_names_the_clinic(
    team: Clinicians, enrolment: Enrolment
) -> None:
    home = client_for(patient_user(enrolment)).get("/me/").content.decode()
    assert f"call {team.clinic.name}, or the emergency services." in home
    assert 'href="tel:' not in home


def test_favicon_ico_is_served(enrolment: Enrolment) -> None:
    response = Client().get("/favicon.ico", follow=True)
    assert response.status_code == 200
    assert response.redirect_chain
    assert response.redirect_chain[0][0].endswith("favicon.ico")
    content = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    assert content[:4] == b"\x00\x00\x01\x00"  # an ICO file


# --- Enter on a radio: no partial submission marked as errors -----------------------------------


def test_a_form_sent_by_enter_with_answers_missing_marks_nothing_and_keeps_the_answers(
    enrolment: Enrolment,
) -> None:
    checkin = open_checkin(enrolment, "phq9")
    token = send_link(checkin)
    # What a browser sends when Enter is pressed on the first radio button without JavaScript:
    # the form's first submit button, the hidden "continue" one.
    response = Client().post(f"/c/{token}", {"item1": "1", "step": "continue"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "has-error" not in body
    assert 'aria-invalid="true"' not in body
    assert 'id="error-summary"' not in body
    assert 'id="continue-summary"' in body
    assert '<a href="#q-item2">Question 2</a>' in body
    assert '<a href="#q-item9">Question 9</a>' in body
    assert '<a href="#q-item1">' not in body
    assert 'data-start="q-item2"' in body
    assert re.search(r'name="item1" value="1"[^>]*checked', body)  # the answer given is kept
    checkin.refresh_from_db()
    assert checkin.status == CheckinStatus.OPEN


def test_the_continue_button_comes_first_so_enter_presses_it(enrolment: Enrolment) -> None:
    body = Client().get(f"/c/{send_link(open_checkin(enrolment))}").content.decode()
    buttons = re.findall(r'<button type="submit" name="step" value="(\w+)"', body)
    assert buttons == ["continue", "send"]


def test_send_my_answers_still_marks_what_is_missing(enrolment: Enrolment) -> None:
    token = send_link(open_checkin(enrolment))
    response = Client().post(f"/c/{token}", {"pain": "6", "step": "send"})
    assert response.status_code == 400
    assert '<a href="#q-enjoyment">Question 2</a>: Please answer this question.' in (
        response.content.decode()
    )


def test_a_complete_form_sent_by_enter_is_sent(enrolment: Enrolment) -> None:
    checkin = open_checkin(enrolment)
    response = Client().post(f"/c/{send_link(checkin)}", {**PEG, "step": "continue"})
    assert response.status_code == 200
    checkin.refresh_from_db()
    assert checkin.status == CheckinStatus.ANSWERED


# --- the patient's language ----------------------------------------------------------------------


def test_a_spanish_speaking_patient_gets_the_message_and_the_page_in_spanish(
    clinic: Clinic, enrolment: Enrolment
) -> None:
    checkin = open_checkin(spanish(enrolment), "phq9")
    body = request_body(checkin.pk)
    assert body.startswith(
        "Riverside Pain Clinic: su control del estado de ánimo está listo. Solo le tomará un "
        "minuto: "
    )
    # The browser's language does not matter: the patient's does.
    page = Client(HTTP_ACCEPT_LANGUAGE="en").get(f"/c/{send_link(checkin)}")
    html = page.content.decode()
    assert page["Content-Language"] == "es"
    assert '<html lang="es">' in html
    assert h1(html) == "Control del estado de ánimo"
    assert "Pregunta 1 de 10" in html
    assert "Enviar mis respuestas" in html
    assert "Saltar al contenido principal" in html
    # The items stay in their validated wording, marked as English, with a note in Spanish.
    assert 'class="language-note"' in html
    assert '<span class="text" lang="en">Little interest or pleasure in doing things</span>' in html
    assert "Hay ayuda disponible ahora mismo" in html
    assert "llame o envíe un mensaje de texto al 988" in html


def test_an_english_speaking_patient_sees_no_language_note(enrolment: Enrolment) -> None:
    page = Client(HTTP_ACCEPT_LANGUAGE="es").get(f"/c/{send_link(open_checkin(enrolment))}")
    html = page.content.decode()
    assert '<html lang="en">' in html
    assert 'class="language-note"' not in html
    assert 'lang="en">' not in html.split("<body", 1)[1]
    assert "Send my answers" in html


def test_errors_and_crisis_resources_are_in_the_patients_language(
    clinic: Clinic, enrolment: Enrolment
) -> None:
    checkin = open_checkin(spanish(enrolment), "phq9")
    token = send_link(checkin)
    missing = Client().post(f"/c/{token}", {"item1": "1", "step": "send"})
    assert missing.status_code == 400
    assert "Todavía no se ha enviado nada. Revise estas respuestas:" in missing.content.decode()
    assert "Conteste esta pregunta, por favor." in missing.content.decode()

    answers = {f"item{n}": "1" for n in range(1, 10)} | {"difficulty": "1", "step": "send"}
    thanks = Client().post(f"/c/{token}", answers)
    assert thanks.status_code == 200
    html = thanks.content.decode()
    assert "Gracias por decírnoslo. Una persona de su equipo de atención se pondrá" in html
    assert "Si está en peligro ahora, llame al 911." in html
    assert "Su control del estado de ánimo se ha enviado a su equipo de atención." in html
    assert f'Su clínica, Riverside Pain Clinic: <a href="tel:{PHONE}">{PHONE}</a>' in html
    assert "Thank you" not in html


def test_the_portal_is_in_the_patients_language(clinic: Clinic, enrolment: Enrolment) -> None:
    checkin = open_checkin(spanish(enrolment))
    client = client_for(patient_user(enrolment))
    home = client.get("/me/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="es">' in home
    assert "Pendiente ahora" in home
    assert "Control semanal del dolor" in home
    assert ">Cerrar sesión</button>" in home
    assert "Primeros pasos" in home  # "What comes next" texts in Spanish too
    form = client.get(f"/me/checkins/{checkin.pk}/").content.decode()
    assert h1(form) == "Control semanal del dolor"
    following = client.get("/me/next/").content.decode()
    assert "Su plan de tratamiento" in following
    assert "Próximos pasos" in following
    out = client.post("/me/logout/").content.decode()
    assert "Ha cerrado la sesión" in out


def test_an_unknown_link_follows_the_browsers_language() -> None:
    spanish_page = Client(HTTP_ACCEPT_LANGUAGE="es-MX,es;q=0.9").get("/c/not-a-token")
    assert spanish_page.status_code == 404
    assert "No reconocemos este enlace" in spanish_page.content.decode()
    english_page = Client(HTTP_ACCEPT_LANGUAGE="en-US").get("/c/not-a-token")
    assert "recognise this link</h1>" in english_page.content.decode()


def test_staff_pages_stay_in_english(team: Clinicians, enrolment: Enrolment) -> None:
    spanish(enrolment)
    client = client_for(team.coordinator)
    page = client.get("/caseload/", HTTP_ACCEPT_LANGUAGE="es")
    assert page.status_code == 200
    assert "Cerrar sesión" not in page.content.decode()


def test_a_pathways_notice_reaches_the_patient_in_their_language_and_staff_in_english(
    team: Clinicians, enrolment: Enrolment
) -> None:
    from carehub.messaging.services import message_enqueue_for_roles

    text = "Your care plan now moves to maintenance: your check-ins become monthly."
    message_enqueue_for_roles(
        patient=spanish(enrolment).patient, roles=["patient", "coordinator"],
        purpose="pathway_notice", body=text, idempotency_key_prefix="notice-test",
        why="test",
    )  # fmt: skip
    messages = Message.objects.filter(idempotency_key__startswith="notice-test")
    bodies = {m.to_patient: m.body for m in messages}
    assert bodies == {
        True: "Su plan de atención pasa ahora a la fase de mantenimiento: sus controles "
        "serán mensuales.",
        False: text,
    }
