"""Paging for list pages: one page of the items, and the query string its pager links keep."""

from django.core.paginator import Paginator


def page_of(request, items, per_page: int) -> dict:
    """``{"page", "query"}`` for a template that includes ``includes/pager.html``: the filters in
    the query string survive the move to another page; only ``page`` itself changes."""
    query = request.GET.copy()
    query.pop("page", None)
    return {
        "page": Paginator(items, per_page).get_page(request.GET.get("page")),
        "query": f"{query.urlencode()}&" if query else "",
    }
