import factory

from ml.answer import Answer
from ml.classes import CLASSES
from ml.referral import ReferralRule, decide
from webapp.accounts.models import CareAssignment, Role, User
from webapp.cases.models import Case, Lesion, Prediction
from webapp.modelops.models import Dataset, DatasetLocation, ModelVersion, TrainingRun

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


# --- rows of the model registry and of cases, for tests that read rows (pages, the gate, the
# reconciler); a test of the upload or the workers makes its cases through the services instead
# (the make_case fixture), so that their photos exist.

UNIFORM = dict.fromkeys(CLASSES, 1 / len(CLASSES))


class ModelVersionFactory(factory.django.DjangoModelFactory):
    """A registered version whose bundle is never fetched."""

    class Meta:
        model = ModelVersion

    name = factory.Sequence(lambda n: f"version-{n}")
    architecture = "basic_cnn"
    bundle_key = factory.LazyAttribute(lambda v: f"models/{v.name}/x.zip")
    sha256 = "0" * 64
    manifest = factory.LazyFunction(lambda: {"class_names": list(CLASSES)})


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dataset

    name = factory.Sequence(lambda n: f"dataset-{n}")
    location_kind = DatasetLocation.FOLDER
    location = "/nowhere"


class TrainingRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TrainingRun

    requested_by = factory.SubFactory(AdminFactory)
    dataset = factory.SubFactory(DatasetFactory)
    options = factory.LazyFunction(dict)


class LesionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lesion

    patient = factory.SubFactory(UserFactory)


class CaseFactory(factory.django.DjangoModelFactory):
    """A case row whose photo was never stored."""

    class Meta:
        model = Case

    lesion = factory.SubFactory(LesionFactory)
    uploaded_by = factory.LazyAttribute(lambda c: c.lesion.patient)
    image_key = factory.Sequence(lambda n: f"cases/row-only-{n}.jpg")
    image_content_type = "image/jpeg"
    image_width = 64
    image_height = 64
    sha256 = "0" * 64


class PredictionFactory(factory.django.DjangoModelFactory):
    """A recorded answer: the named class is the most probable one unless ``top_class`` says."""

    class Meta:
        model = Prediction

    case = factory.SubFactory(CaseFactory)
    model_version = factory.SubFactory(ModelVersionFactory)
    probabilities = factory.LazyFunction(lambda: dict(UNIFORM))
    top_class = factory.LazyAttribute(lambda p: max(p.probabilities, key=p.probabilities.get))
    top_probability = factory.LazyAttribute(lambda p: p.probabilities[p.top_class])
    latency_ms = 5
    result_key = "r"
