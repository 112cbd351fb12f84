from django.conf import settings
from django.core.management.base import BaseCommand

from webapp.storage.store import ensure_bucket, s3_client


class Command(BaseCommand):
    help = "Create the configured S3 bucket if it does not exist (it stays private)."

    def handle(self, *args, **options):
        client = s3_client(
            settings.S3_ENDPOINT_URL,
            settings.S3_ACCESS_KEY_ID,
            settings.S3_SECRET_ACCESS_KEY,
            settings.S3_REGION,
        )
        created = ensure_bucket(client, settings.S3_BUCKET)
        state = "created" if created else "ready"
        self.stdout.write(f"Bucket {settings.S3_BUCKET} is {state} at {settings.S3_ENDPOINT_URL}.")
