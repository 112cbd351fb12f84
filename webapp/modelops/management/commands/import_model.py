from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ml.bundle import BundleError
from webapp.modelops.services.registry import model_version_activate, model_version_register


class Command(BaseCommand):
    help = "Register a model bundle directory (model.keras + manifest.json) and optionally activate it."

    def add_arguments(self, parser):
        parser.add_argument("bundle", type=Path, help="bundle directory written by `python -m ml`")
        parser.add_argument("--name", help="version name (default: <architecture>-<timestamp>)")
        parser.add_argument(
            "--activate", action="store_true", help="make it the model that answers uploads"
        )

    def handle(self, *args, bundle: Path, name: str | None, activate: bool, **options):
        if not bundle.is_dir():
            raise CommandError(f"{bundle} is not a directory; give the bundle folder.")
        try:
            version = model_version_register(bundle_dir=bundle, name=name)
        except BundleError as exc:
            raise CommandError(f"Refused bundle {bundle}: {exc}") from exc
        self.stdout.write(f"Registered model {version.name} ({version.architecture}).")
        if activate:
            model_version_activate(
                version=version, reason="manage.py import_model --activate (command line)"
            )
            self.stdout.write(self.style.SUCCESS(f"Activated {version.name}."))
