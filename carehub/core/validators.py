from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.core.exceptions import ValidationError


def validate_time_zone(value: str) -> None:
    """An IANA time zone name such as "Europe/London" (not an abbreviation or an offset)."""
    if value not in available_timezones():
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValidationError(
                "%(value)s is not an IANA time zone (for example Europe/London).",
                code="invalid_time_zone",
                params={"value": value},
            ) from exc
