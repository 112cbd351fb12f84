from django.core.management.base import BaseCommand

from webapp.cases.services import case_enqueue_waiting


class Command(BaseCommand):
    help = "Enqueue cases still marked queued (after a broker restart or outage). Duplicates are harmless."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            default=60,
            help="only cases queued at least this many seconds",
        )

    def handle(self, *args, older_than: int, **options):
        count = case_enqueue_waiting(older_than_seconds=older_than)
        self.stdout.write(f"Enqueued {count} waiting case(s).")
