from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from webapp.accounts.models import CareAssignment, User


@admin.register(User)
class SkinSightUserAdmin(UserAdmin):
    list_display = ("username", "email", "role", "is_active", "date_joined")
    list_filter = ("role", "is_active", "is_staff")
    fieldsets = (*UserAdmin.fieldsets, ("SkinSight", {"fields": ("role",)}))


@admin.register(CareAssignment)
class CareAssignmentAdmin(admin.ModelAdmin):
    list_display = ("clinician", "patient", "created_at")
    raw_id_fields = ("clinician", "patient")
