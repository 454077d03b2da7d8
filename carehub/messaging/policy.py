"""The delivery policy: whether, when and by which channel a message goes out, decided right
before it is sent. Pure functions of the message's facts and the current time; every outcome
carries the reason recorded in the message's delivery log.

Order for a patient: suppression → opt-out → channel → quiet hours → daily budget.
For staff: suppression → urgent now → routine held for the daily digest if wanted → now.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from carehub.core.models import Urgency
from carehub.messaging.models import DeliveryChannel, MessageStatus, Purpose

SEND = "send"

# Crisis messages (e.g. crisis resources after a red-flag check-in answer) go out whatever the
# hour and whatever the budget: the patient has just written to us.
CRISIS_PURPOSES = frozenset({Purpose.CHECKIN_CRISIS})

CHANNEL_LABELS: dict[str, str] = {
    DeliveryChannel.SMS: "SMS",
    DeliveryChannel.EMAIL: "e-mail",
    DeliveryChannel.IN_APP: "in-app",
}


@dataclass(frozen=True)
class Decision:
    outcome: str  # SEND or the MessageStatus the message takes instead
    reason: str
    channel: str = ""
    not_before: datetime | None = None


@dataclass(frozen=True)
class PatientContact:
    time_zone: str
    window_start: time
    window_end: time
    preferred_channel: str
    fallback_channel: str
    phone: str
    email: str
    opted_out: bool = False
    opted_out_channels: frozenset[str] = frozenset()
    daily_budget: int = 3


@dataclass(frozen=True)
class StaffContact:
    daily_digest: bool
    digest_hour: time
    channel: str
    email: str


# --- local time ---------------------------------------------------------------------------------


def local_instants(day: date, at: time, tz: ZoneInfo) -> list[datetime]:
    """The UTC instants at which the wall clock in `tz` shows `at` on `day`, earliest first: two
    in a fall-back fold, one normally; in a spring-forward gap (the time never shows) the first
    valid minute after the gap."""
    naive = datetime.combine(day, at)
    instants = []
    for fold in (0, 1):
        candidate = naive.replace(tzinfo=tz, fold=fold)
        utc = candidate.astimezone(UTC)
        if utc.astimezone(tz).replace(tzinfo=None) == naive:
            instants.append(utc)
    if not instants:  # a gap: walk forward to the first wall-clock minute that exists
        minute = naive.replace(second=0, microsecond=0)
        for _ in range(24 * 60):
            minute += timedelta(minutes=1)
            utc = minute.replace(tzinfo=tz).astimezone(UTC)
            if utc.astimezone(tz).replace(tzinfo=None) == minute:
                return [utc]
        raise ValueError(f"{day} {at} does not exist in {tz.key}")  # pragma: no cover
    return sorted(set(instants))


def local_day_bounds(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the local day containing `now` (23 or 25 hours across DST)."""
    today = now.astimezone(tz).date()
    start = local_instants(today, time(0, 0), tz)[0]
    end = local_instants(today + timedelta(days=1), time(0, 0), tz)[0]
    return start, end


def in_window(now: datetime, tz: ZoneInfo, start: time, end: time) -> bool:
    local = now.astimezone(tz).time()
    return start <= local < end


def next_window_opening(now: datetime, tz: ZoneInfo, start: time) -> datetime:
    """The first instant after `now` at which the local wall clock shows `start`."""
    today = now.astimezone(tz).date()
    for offset in range(3):
        for instant in local_instants(today + timedelta(days=offset), start, tz):
            if instant > now:
                return instant
    raise ValueError("no window opening within three days")  # pragma: no cover


def describe_local(instant: datetime, tz: ZoneInfo) -> str:
    local = instant.astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({instant.astimezone(UTC):%Y-%m-%d %H:%M} UTC)"


# --- channels -----------------------------------------------------------------------------------


def _unusable_because(channel: str, contact: PatientContact) -> str | None:
    if channel in contact.opted_out_channels:
        return "opted out"
    if channel == DeliveryChannel.SMS and not contact.phone:
        return "no phone number"
    if channel == DeliveryChannel.EMAIL and not contact.email:
        return "no e-mail address"
    if channel not in CHANNEL_LABELS:
        return "unknown channel"
    return None


def choose_patient_channel(contact: PatientContact, *, pinned: str = "") -> tuple[str | None, str]:
    """(channel, reason) or (None, reason): preferred if usable, else fallback, else in-app.

    A message already attempted keeps its channel (`pinned`): trying another channel after an
    attempt whose fate is unknown could deliver it twice. Opting out of it stops the message."""
    if pinned:
        problem = _unusable_because(pinned, contact)
        if problem is None:
            return pinned, f"{CHANNEL_LABELS[pinned]}, the channel of the first attempt"
        if problem == "opted out":
            return (
                None,
                f"the patient opted out of {CHANNEL_LABELS[pinned]} after the first attempt",
            )
    order: list[tuple[str, str]] = [(contact.preferred_channel, "preferred")]
    if contact.fallback_channel:
        order.append((contact.fallback_channel, "fallback"))
    order.append((DeliveryChannel.IN_APP, "last resort"))
    problems: list[str] = []
    seen: set[str] = set()
    for channel, role in order:
        if channel in seen:
            continue
        seen.add(channel)
        problem = _unusable_because(channel, contact)
        if problem is None:
            label = CHANNEL_LABELS[channel]
            if not problems:
                return channel, f"{label}, the patient's preferred channel"
            return channel, f"{label} ({role}): " + "; ".join(problems)
        problems.append(f"{CHANNEL_LABELS.get(channel, channel)}: {problem}")
    return None, "no usable channel: " + "; ".join(problems)


# --- decisions ----------------------------------------------------------------------------------


def decide_for_patient(
    *,
    purpose: str,
    urgency: str,
    contact: PatientContact,
    now: datetime,
    suppressed_because: str | None,
    sent_today: Callable[[], int],
    pinned_channel: str = "",
) -> Decision:
    if suppressed_because:
        return Decision(MessageStatus.SUPPRESSED, f"Suppressed: {suppressed_because}")
    if contact.opted_out:
        return Decision(MessageStatus.OPTED_OUT, "Not sent: the patient opted out of all messages")
    channel, why_channel = choose_patient_channel(contact, pinned=pinned_channel)
    if channel is None:
        return Decision(MessageStatus.OPTED_OUT, f"Not sent: {why_channel}")
    crisis = purpose in CRISIS_PURPOSES
    tz = ZoneInfo(contact.time_zone)
    window = f"{contact.window_start:%H:%M}-{contact.window_end:%H:%M} ({contact.time_zone})"
    if not crisis and not in_window(now, tz, contact.window_start, contact.window_end):
        opening = next_window_opening(now, tz, contact.window_start)
        return Decision(
            MessageStatus.DEFERRED,
            f"Deferred by quiet hours: outside the patient's send window {window}; "
            f"until {describe_local(opening, tz)}",
            channel=channel,
            not_before=opening,
        )
    if urgency == Urgency.ROUTINE and not crisis:
        already = sent_today()
        if already >= contact.daily_budget:
            return Decision(
                MessageStatus.OVER_BUDGET,
                f"Not sent: over the daily budget ({already} of {contact.daily_budget} messages "
                f"already sent today, {now.astimezone(tz):%Y-%m-%d} in {contact.time_zone})",
                channel=channel,
            )
    return Decision(SEND, f"Sending by {why_channel}", channel=channel)


def decide_for_staff(
    *, purpose: str, urgency: str, contact: StaffContact, suppressed_because: str | None
) -> Decision:
    if suppressed_because:
        return Decision(MessageStatus.SUPPRESSED, f"Suppressed: {suppressed_because}")
    channel = DeliveryChannel.IN_APP
    why_channel = "in-app"
    if contact.channel == DeliveryChannel.EMAIL:
        if contact.email:
            channel, why_channel = DeliveryChannel.EMAIL, "e-mail"
        else:
            why_channel = "in-app (e-mail preferred, but no address)"
    if urgency == Urgency.URGENT:
        return Decision(SEND, f"Urgent staff alert: sent at once by {why_channel}", channel=channel)
    if purpose != Purpose.DIGEST and contact.daily_digest:
        return Decision(
            MessageStatus.HELD_FOR_DIGEST,
            f"Routine: held for the daily digest at {contact.digest_hour:%H:%M}",
        )
    return Decision(SEND, f"Sending by {why_channel}", channel=channel)
