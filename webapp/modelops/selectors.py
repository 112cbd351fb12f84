from webapp.modelops.models import ModelStatus, ModelVersion


def model_version_get_active() -> ModelVersion | None:
    return ModelVersion.objects.filter(status=ModelStatus.ACTIVE).first()
