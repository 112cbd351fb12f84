from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied


def admin_required(view):
    """Signed-in administrators only: others signed in get 403, anonymous visitors the login page."""

    @wraps(view)
    @login_required
    def wrapped(request, *args, **kwargs):
        if not request.user.is_admin_role:
            raise PermissionDenied("Only administrators may manage models.")
        return view(request, *args, **kwargs)

    return wrapped
