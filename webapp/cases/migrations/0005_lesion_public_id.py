import uuid

from django.db import migrations, models


def give_each_lesion_its_own_id(apps, schema_editor):
    Lesion = apps.get_model("cases", "Lesion")
    for lesion in Lesion.objects.filter(public_id__isnull=True).only("pk"):
        lesion.public_id = uuid.uuid4()
        lesion.save(update_fields=["public_id"])


class Migration(migrations.Migration):
    dependencies = [("cases", "0004_prediction_engine")]

    operations = [
        # Added nullable first: a callable default is evaluated once for existing rows, which
        # would give every existing lesion the same id.
        migrations.AddField(
            model_name="lesion",
            name="public_id",
            field=models.UUIDField(null=True, editable=False),
        ),
        migrations.RunPython(give_each_lesion_its_own_id, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="lesion",
            name="public_id",
            field=models.UUIDField(default=uuid.uuid4, unique=True, editable=False),
        ),
    ]
