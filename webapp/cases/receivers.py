from django.dispatch import receiver

from webapp.cases.services.jobs import case_enqueue_waiting
from webapp.modelops.signals import model_version_activated


@receiver(model_version_activated)
def enqueue_waiting_cases(sender, version, **kwargs):
    """Uploads stored while no model was active go to the workers as soon as one is."""
    case_enqueue_waiting()
