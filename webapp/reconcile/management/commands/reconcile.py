from django.core.management.base import BaseCommand

from webapp.reconcile import reconciler


class Command(BaseCommand):
    help = (
        "Send again the jobs of cases and heat maps the broker lost (what Celery beat runs every "
        "minute); with --check-objects, also list rows whose stored objects are gone and objects "
        "no row points at. Exits 1 when something does not match."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--check-objects",
            action="store_true",
            help="compare every case, result and heat map row with the bucket (lists the bucket)",
        )

    def handle(self, *args, check_objects: bool = False, **options):
        sent = reconciler.reconcile_jobs()
        self.stdout.write(
            f"sent again: {sent['queued']} queued case(s), {sent['running']} running case(s) "
            f"whose worker is gone, {sent['heatmaps']} heat map(s), {sent['reruns']} re-run "
            f"answer(s), {sent['imports']} model import(s)"
        )
        if not check_objects:
            return
        report = reconciler.check_objects()
        mismatches = 0
        for kind, items in report.items():
            mismatches += len(items)
            self.stdout.write(f"{kind.replace('_', ' ')}: {len(items)}")
            for item in items[:20]:
                self.stdout.write(f"  {item}")
            if len(items) > 20:
                self.stdout.write(f"  … and {len(items) - 20} more")
        if mismatches:
            raise SystemExit(1)
