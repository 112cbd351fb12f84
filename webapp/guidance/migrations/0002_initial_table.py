from django.db import migrations

from webapp.guidance.initial_table import INITIAL_GUIDANCE


def load(apps, schema_editor):
    GuidanceVersion = apps.get_model("guidance", "GuidanceVersion")
    for dx, texts in INITIAL_GUIDANCE.items():
        if not GuidanceVersion.objects.filter(dx=dx).exists():
            # Shipped, not reviewed: written_by and reviewed_by stay empty, and the pages say so.
            GuidanceVersion.objects.create(dx=dx, version=1, status="approved", **texts)


class Migration(migrations.Migration):
    dependencies = [("guidance", "0001_initial")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
