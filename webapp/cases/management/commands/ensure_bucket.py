from django.conf import settings
from django.core.management.base import BaseCommand

from deploy.local_services import ensure_bucket


class Command(BaseCommand):
    help = "Create the configured S3 bucket if it does not exist (it stays private)."

    def handle(self, *args, **options):
        ensure_bucket(
            settings.S3_ENDPOINT_URL,
            settings.S3_BUCKET,
            settings.S3_ACCESS_KEY_ID,
            settings.S3_SECRET_ACCESS_KEY,
        )
        self.stdout.write(f"Bucket {settings.S3_BUCKET} is ready at {settings.S3_ENDPOINT_URL}.")
