from django.db import transaction

from carehub.accounts.models import Role, User
from carehub.clinics.models import Clinic


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
