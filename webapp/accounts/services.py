from django.db import transaction

from webapp.accounts.models import CareAssignment, Role, User


@transaction.atomic
def user_create(*, username: str, password: str, email: str = "", role: str = Role.PATIENT) -> User:
    user = User(username=username, email=email, role=role)
    user.set_password(password)
    if role == Role.ADMIN:
        user.is_staff = True
        user.is_superuser = True
    user.full_clean()
    user.save()
    return user


def care_assignment_create(*, clinician: User, patient: User) -> CareAssignment:
    if clinician.role != Role.CLINICIAN:
        raise ValueError(f"{clinician.username} is not a clinician.")
    if patient.role != Role.PATIENT:
        raise ValueError(f"{patient.username} is not a patient.")
    assignment, _ = CareAssignment.objects.get_or_create(clinician=clinician, patient=patient)
    return assignment
