from django.core.management.base import BaseCommand, CommandError

from webapp.modelops.selectors import model_version_get_active


class Command(BaseCommand):
    help = "Print the active model's name, or say that none is active."

    def add_arguments(self, parser):
        parser.add_argument(
            "--check",
            action="store_true",
            help="exit with status 1 when no model is active (for scripts: the answer is the status, "
            "not the text)",
        )

    def handle(self, *args, check: bool, **options):
        version = model_version_get_active()
        if version is None:
            if check:
                raise CommandError("No model is active.", returncode=1)
            self.stdout.write("No model is active.")
            return
        self.stdout.write(f"{version.name} ({version.architecture}) is active.")
