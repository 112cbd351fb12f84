"""The API's paging (its own module: DRF reads it from the settings while its views load)."""

from rest_framework.pagination import PageNumberPagination


class StrictPageNumberPagination(PageNumberPagination):
    """``?page=`` with no number is an invalid page (404), not silently the first one."""

    def get_page_number(self, request, paginator):
        number = request.query_params.get(self.page_query_param)
        if number is None:
            return 1
        if number in self.last_page_strings:
            return paginator.num_pages
        return number
