import secrets

from django.conf import settings
from django.core.management.base import BaseCommand

from webapp.accounts.models import Role, User
from webapp.accounts.services import user_create


class Command(BaseCommand):
    help = (
        "Create the first admin account if none exists. Username and password come from "
        "ADMIN_USERNAME / ADMIN_PASSWORD, or a password is generated and printed once."
    )

    def handle(self, *args, **options):
        if User.objects.filter(is_superuser=True).exists():
            return
        username = settings.ADMIN_USERNAME
        password = settings.ADMIN_PASSWORD or secrets.token_urlsafe(12)
        user_create(username=username, password=password, role=Role.ADMIN)
        self.stdout.write(self.style.SUCCESS("Created the admin account (shown only this once):"))
        self.stdout.write(f"  username: {username}")
        if settings.ADMIN_PASSWORD:
            self.stdout.write("  password: the value of ADMIN_PASSWORD")
        else:
            self.stdout.write(f"  password: {password}")
