from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from webapp.errors import ApplicationError
from webapp.modelops.services.external_sets import external_set_register


class Command(BaseCommand):
    help = (
        "Register labelled photos from other sources (a folder with labels.csv: image,dx and "
        "optionally lesion_id, image_id) as the external evaluation set every candidate is judged on."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="how pages name the set, e.g. isic2018-test")
        parser.add_argument("folder", type=Path, help="folder holding labels.csv and the photos")
        parser.add_argument("--description", default="", help="where the photos come from")

    def handle(self, *args, name: str, folder: Path, description: str, **options):
        try:
            evaluation_set = external_set_register(
                name=name,
                folder=folder,
                description=description,
                say=lambda message: self.stdout.write(message),
            )
        except ApplicationError as exc:
            raise CommandError(f"Refused {folder}: {exc}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Registered {evaluation_set} as set {evaluation_set.sha256[:12]}: "
                + ", ".join(f"{dx} {n}" for dx, n in evaluation_set.class_counts.items())
            )
        )
