import uuid

from django.conf import settings
from django.db import models

from webapp.records import WriteOnceModel


class ModelStatus(models.TextChoices):
    CANDIDATE = "candidate", "Candidate"
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"


class ModelVersion(WriteOnceModel):
    """A registered model bundle in object storage. Bundles are immutable: a new model is a new row.

    Only `status` and `activated_at` ever change after creation (promotion and rollback move them);
    everything that says what the model is and where it came from is fixed when it is registered.
    """

    MUTABLE_FIELDS = frozenset({"status", "activated_at"})

    name = models.CharField(max_length=120, unique=True)
    architecture = models.CharField(max_length=64)
    bundle_key = models.CharField(max_length=255, unique=True)
    sha256 = models.CharField(max_length=64, help_text="sha256 of the bundle zip in storage")
    status = models.CharField(
        max_length=16, choices=ModelStatus.choices, default=ModelStatus.CANDIDATE, db_index=True
    )
    manifest = models.JSONField()
    metrics = models.JSONField(default=dict, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT
    )
    training_run = models.OneToOneField(
        "TrainingRun",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="model_version",
        help_text="the run that trained it (none for imported models)",
    )
    snapshot = models.ForeignKey(
        "DatasetSnapshot",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="model_versions",
        help_text="the frozen data it was trained on",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # At most one model answers patients at any time.
            models.UniqueConstraint(
                fields=["status"],
                condition=models.Q(status="active"),
                name="single_active_model_version",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest.get("class_names", []))


class DatasetLocation(models.TextChoices):
    FOLDER = "folder", "Folder on the training server"
    S3 = "s3", "Prefix in the object store"


class Dataset(models.Model):
    """A registered base dataset in the HAM10000 layout (metadata CSV plus images below it)."""

    name = models.SlugField(max_length=80, unique=True)
    location_kind = models.CharField(max_length=8, choices=DatasetLocation.choices)
    location = models.CharField(
        max_length=1024, help_text="absolute folder path, or key prefix in the bucket"
    )
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class EvaluationSetKind(models.TextChoices):
    HELD_OUT = "held_out", "Held out from a training dataset"
    EXTERNAL = "external", "Photos from other sources"


class EvaluationSet(models.Model):
    """A frozen set of labelled photos every candidate is judged on, stored with its content hashes.

    ``held_out``: carved once, by lesion, from a training dataset; every training snapshot leaves its
    lesions and images out, so no training run ever sees it. ``external``: photos from other sources
    (other clinics, cameras, framing), registered by an admin with their images copied into the
    store; runs may choose thresholds on them but never train on them. The gate checks both.
    """

    kind = models.CharField(
        max_length=16, choices=EvaluationSetKind.choices, default=EvaluationSetKind.HELD_OUT
    )
    name = models.CharField(max_length=80, blank=True, help_text="how pages name an external set")
    description = models.TextField(blank=True)
    dataset = models.ForeignKey(
        Dataset,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="evaluation_sets",
        help_text="the dataset a held-out set was carved from (none for an external set)",
    )
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    sha256 = models.CharField(max_length=64, unique=True)
    key = models.CharField(max_length=255)
    image_count = models.PositiveIntegerField()
    class_counts = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind="external", dataset__isnull=True, name__gt="")
                | models.Q(kind="held_out", dataset__isnull=False),
                name="evaluation_set_kind_matches_origin",
            )
        ]

    def __str__(self) -> str:
        if self.is_external:
            return f"photos from other sources {self.name} ({self.image_count} images)"
        return f"evaluation set {self.sha256[:12]} ({self.image_count} images of {self.dataset})"

    @property
    def is_external(self) -> bool:
        return self.kind == EvaluationSetKind.EXTERNAL

    @property
    def title(self) -> str:
        """How pages head this set's numbers."""
        if self.is_external:
            return f"Photos from other sources ({self.name})"
        return "The held-out evaluation set"


class DatasetSnapshot(models.Model):
    """The exact data of a training run: image references, labels and content hashes, in S3.

    The same data gives the same sha256, so repeating a run reuses its snapshot."""

    sha256 = models.CharField(max_length=64, unique=True)
    key = models.CharField(max_length=255)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="snapshots")
    evaluation_set = models.ForeignKey(
        EvaluationSet,
        on_delete=models.PROTECT,
        related_name="snapshots",
        help_text="left out of this snapshot",
    )
    image_count = models.PositiveIntegerField()
    class_counts = models.JSONField()
    confirmed_case_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"snapshot {self.sha256[:12]} ({self.image_count} images)"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    PREPARING = "preparing", "Preparing data"
    TRAINING = "training", "Training"
    EVALUATING = "evaluating", "Evaluating"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


RUN_TERMINAL = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})
RUN_IN_PROGRESS = frozenset({RunStatus.PREPARING, RunStatus.TRAINING, RunStatus.EVALUATING})

# Forward only; a run is claimed once (queued → preparing), so it never executes twice.
RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    RunStatus.QUEUED: frozenset({RunStatus.PREPARING, RunStatus.FAILED, RunStatus.CANCELLED}),
    RunStatus.PREPARING: frozenset({RunStatus.TRAINING, RunStatus.FAILED, RunStatus.CANCELLED}),
    RunStatus.TRAINING: frozenset({RunStatus.EVALUATING, RunStatus.FAILED, RunStatus.CANCELLED}),
    RunStatus.EVALUATING: frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}),
    RunStatus.SUCCEEDED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}


class TrainingRun(models.Model):
    """One retraining job: what an admin asked for, the data it froze, and how it went."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="training_runs"
    )
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="training_runs")
    include_confirmed_cases = models.BooleanField(default=False)
    preset = models.CharField(max_length=16, blank=True)
    options = models.JSONField(help_text="training options (preset plus explicit choices)")
    repeat_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="repeats"
    )
    snapshot = models.ForeignKey(
        DatasetSnapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    status = models.CharField(
        max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True
    )
    status_reason = models.TextField(blank=True)
    problems = models.JSONField(default=list, blank=True, help_text="what was wrong with the data")
    progress = models.JSONField(default=dict, blank=True)
    device = models.CharField(max_length=200, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    artefacts = models.JSONField(default=dict, blank=True, help_text="name → object key")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"training run {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in RUN_TERMINAL


class ImportKind(models.TextChoices):
    BUNDLE = "bundle", "A SkinSight bundle (.zip)"
    MODEL_FILE = "model_file", "A Keras model file (.keras or .h5, Keras 2 or 3)"
    JSON_WEIGHTS = "json_weights", "Keras JSON + H5 weights (the paper's deployment files)"


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Checking"
    SUCCEEDED = "succeeded", "Registered"
    FAILED = "failed", "Refused"


class ModelImport(models.Model):
    """An uploaded model waiting for the training worker to check, convert and register it."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="model_imports"
    )
    kind = models.CharField(max_length=16, choices=ImportKind.choices)
    architecture = models.CharField(max_length=64)
    input_scale = models.CharField(max_length=8, default="0-255")
    name = models.CharField(max_length=120, blank=True)
    uploads = models.JSONField(default=dict, help_text="role → object key of the uploaded files")
    status = models.CharField(
        max_length=16, choices=ImportStatus.choices, default=ImportStatus.QUEUED
    )
    status_reason = models.TextField(blank=True)
    model_version = models.OneToOneField(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="import_record"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"import {self.public_id} ({self.status})"


class ModelEvaluation(models.Model):
    """A model's numbers on an evaluation set; the judge compares these, never training-time ones."""

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="evaluations"
    )
    evaluation_set = models.ForeignKey(
        EvaluationSet, on_delete=models.PROTECT, related_name="evaluations"
    )
    metrics = models.JSONField()
    artefacts = models.JSONField(default=dict, blank=True, help_text="plot name → object key")
    seen_in_training = models.IntegerField(
        null=True,
        blank=True,
        help_text="evaluation images the model trained or validated on (unknown when empty)",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "evaluation_set"], name="one_evaluation_per_set"
            )
        ]

    def __str__(self) -> str:
        return f"{self.model_version.name} on {self.evaluation_set}"


class ModelEventAction(models.TextChoices):
    PROMOTE = "promote", "Promoted"
    ROLLBACK = "rollback", "Rolled back"
    ACTIVATE = "activate", "Activated from the command line"


class ModelEvent(WriteOnceModel):
    """Append-only record of which model answers patients and why it changed: who, when, from which."""

    action = models.CharField(max_length=16, choices=ModelEventAction.choices)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    previous = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT
    )
    reason = models.TextField(blank=True)
    gate = models.JSONField(default=dict, blank=True, help_text="the comparison promotion checked")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.version.name}"
