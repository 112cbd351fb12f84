import csv
import itertools

from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from webapp.accounts.decorators import admin_required
from webapp.audit.forms import AuditFilter
from webapp.audit.selectors import audit_events
from webapp.paging import page_of

CSV_COLUMNS = [
    "at",
    "actor_username",
    "action",
    "route",
    "object_type",
    "object_id",
    "outcome",
    "status_code",
    "ip",
]


class _Echo:
    def write(self, value):
        return value


@admin_required
@require_GET
def trail(request):
    """The audit trail for administrators: filter it, page through it, or download it as CSV."""
    form = AuditFilter(request.GET)
    events = audit_events(**form.cleaned_data) if form.is_valid() else audit_events().none()
    if request.GET.get("format") == "csv":
        writer = csv.writer(_Echo())
        rows = (
            [getattr(e, column) for column in CSV_COLUMNS] for e in events.iterator(chunk_size=2000)
        )
        response = StreamingHttpResponse(
            (writer.writerow(row) for row in itertools.chain([CSV_COLUMNS], rows)),
            content_type="text/csv",
        )
        response["Content-Disposition"] = 'attachment; filename="skinsight-audit.csv"'
        return response
    return render(request, "audit/trail.html", {"form": form, **page_of(request, events, 50)})
