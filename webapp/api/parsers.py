"""The API's JSON parser: text the database can store, or a 400 that says why not."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class StrictJSONParser(JSONParser):
    """JSON can carry unpaired UTF-16 surrogates ("\\ud800"), which are not text: they cannot be
    written as UTF-8, so no database, file or log can store them. Refused here, once, with a
    reason, instead of failing deep inside a query. (NUL characters are refused by the fields
    that read text.)"""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if _has_unpaired_surrogate(data):
            raise ParseError(
                "JSON parse error - the body holds an unpaired UTF-16 surrogate, which is not text."
            )
        return data


def _has_unpaired_surrogate(value) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_unpaired_surrogate(v) for item in value.items() for v in item)
    if isinstance(value, list):
        return any(_has_unpaired_surrogate(v) for v in value)
    return False
