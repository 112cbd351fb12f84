from rest_framework.permissions import BasePermission


class IsAdminRole(BasePermission):
    """Administrators only (the services check again; the training task checks a third time)."""

    message = "Only administrators may train, promote or roll back models."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.is_admin_role)


class IsClinicianOrAdmin(BasePermission):
    message = "The review queue is for clinicians and administrators."

    def has_permission(self, request, view):
        user = request.user
        return bool(
            user
            and user.is_authenticated
            and user.is_active
            and (user.is_clinician or user.is_admin_role)
        )
