from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from carehub.accounts.models import Role, User
from carehub.clinics.models import Clinic
from carehub.core.exceptions import InvalidInput


@transaction.atomic
def staff_create(
    *,
    clinic: Clinic,
    username: str,
    role: Role | str,
    password: str | None,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    is_staff: bool = False,
) -> User:
    """Create a member of staff; `password=None` makes an account that cannot log in yet."""
    user = User(
        clinic=clinic,
        username=username,
        role=Role(role),
        first_name=first_name,
        last_name=last_name,
        email=email,
        is_staff=is_staff,
    )
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    user.full_clean()
    user.save()
    return user


@transaction.atomic
def user_password_change(*, user: User, password: str) -> User:
    """Set a new password (checked by the password validators: `InvalidInput` naming the field
    otherwise, changing nothing). Saving it revokes every API token of the user (`User.save`)."""
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages), extra={"field": "password"}) from exc
    user.set_password(password)
    user.save(update_fields=["password"])
    return user
