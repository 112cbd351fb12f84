from webapp.modelops.selectors import model_version_get_active


def model_status(request):
    """Every page says plainly when no model is active (uploads then wait in the queue)."""
    return {"active_model": model_version_get_active()}
