import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.text import slugify

from ml.training_config import add_training_options
from webapp.accounts.models import Role, User
from webapp.errors import ApplicationError
from webapp.modelops.models import Dataset, DatasetLocation, ModelVersion, RunStatus, TrainingRun
from webapp.modelops.selectors import model_version_get_active
from webapp.modelops.services.datasets import dataset_register
from webapp.modelops.services.registry import model_version_promote
from webapp.modelops.services.runs import REQUESTABLE_OPTIONS, training_run_create

POLL_SECONDS = 2.0


class Command(BaseCommand):
    help = (
        "Queue a training run for the training worker, as an administrator would from the Models "
        "page; optionally wait for it, printing its progress, and promote it when no model is active."
    )

    def add_arguments(self, parser):
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument("--dataset", help="name of a registered dataset")
        where.add_argument(
            "--dataset-dir",
            type=Path,
            help="HAM10000-layout folder on this server; registered as a dataset if it is not yet",
        )
        parser.add_argument(
            "--as", dest="username", help="administrator who asks (default: the first one)"
        )
        parser.add_argument(
            "--wait", action="store_true", help="wait for the run, printing progress"
        )
        parser.add_argument(
            "--promote-if-none-active",
            action="store_true",
            help="with --wait: make the candidate the active model when none is active yet",
        )
        add_training_options(parser)

    def handle(self, *args, **options):
        admin = self._admin(options.get("username"))
        try:
            dataset = self._dataset(options, admin)
            run = training_run_create(
                requested_by=admin,
                dataset=dataset,
                preset=options.get("preset") or "",
                options={k: v for k, v in options.items() if k in REQUESTABLE_OPTIONS},
            )
        except ApplicationError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Queued training run {run.public_id} on dataset {dataset.name}.")
        if not options["wait"]:
            return
        run = self._follow(run)
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(
                f"Training run {run.get_status_display().lower()}: {run.status_reason}"
            )
        version = ModelVersion.objects.get(training_run=run)
        if options["promote_if_none_active"] and model_version_get_active() is None:
            model_version_promote(
                version=version,
                actor=admin,
                reason="first model, trained at start-up (train_model)",
            )
            self.stdout.write(self.style.SUCCESS(f"{version.name} is now the active model."))
        else:
            self.stdout.write(f"Candidate {version.name} is ready to be judged and promoted.")

    def _admin(self, username: str | None) -> User:
        admins = User.objects.filter(is_active=True).filter(role=Role.ADMIN) | User.objects.filter(
            is_active=True, is_superuser=True
        )
        admin = (
            admins.filter(username=username).first() if username else admins.order_by("pk").first()
        )
        if admin is None:
            raise CommandError(
                "No active administrator to ask for the run; run ensure_admin first."
            )
        return admin

    def _dataset(self, options: dict, admin: User) -> Dataset:
        if options.get("dataset"):
            dataset = Dataset.objects.filter(name=options["dataset"]).first()
            if dataset is None:
                raise CommandError(f"No dataset named {options['dataset']!r} is registered.")
            return dataset
        folder = options["dataset_dir"].resolve()
        existing = Dataset.objects.filter(
            location_kind=DatasetLocation.FOLDER, location=str(folder)
        ).first()
        if existing is not None:
            return existing
        name = slugify(folder.name) or "dataset"
        if Dataset.objects.filter(name=name).exists():
            name = f"{name}-{Dataset.objects.count() + 1}"
        return dataset_register(
            name=name, location_kind=DatasetLocation.FOLDER, location=str(folder), created_by=admin
        )

    def _follow(self, run: TrainingRun) -> TrainingRun:
        """Print the run's log lines as they come (the row keeps the latest few, timestamped)."""
        last = None
        while True:
            run.refresh_from_db()
            lines = run.progress.get("messages", [])
            start = lines.index(last) + 1 if last in lines else 0
            for line in lines[start:]:
                self.stdout.write(f"  {line}")
            if lines:
                last = lines[-1]
            if run.is_finished:
                return run
            time.sleep(POLL_SECONDS)
