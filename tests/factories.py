import factory

from ml.answer import Answer
from ml.referral import ReferralRule, decide
from webapp.accounts.models import CareAssignment, Role, User

PASSWORD = "correct-horse-battery-9"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    role = Role.PATIENT
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def finish(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class ClinicianFactory(UserFactory):
    role = Role.CLINICIAN


class AdminFactory(UserFactory):
    role = Role.ADMIN
    is_staff = True
    is_superuser = True


class CareAssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CareAssignment

    clinician = factory.SubFactory(ClinicianFactory)
    patient = factory.SubFactory(UserFactory)


def answer_for(
    probabilities: dict[str, float],
    *,
    rule: ReferralRule | None = None,
    latency_ms: int = 5,
    engine: str = "onnxruntime-cpu",
    top_class: str | None = None,
) -> Answer:
    """A model's answer for one photo as a worker makes it: decided by ``rule`` (none: refer),
    naming ``top_class`` or else the most probable class."""
    return Answer(
        dict(probabilities),
        top_class or max(probabilities, key=probabilities.get),
        decide(probabilities, rule),
        engine,
        latency_ms,
    )
