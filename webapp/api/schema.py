"""How the OpenAPI schema describes what every operation may answer besides success.

drf-spectacular documents the success answers that the views declare; the refusals every API view
can give follow from how it is built (authentication, path parameters, a request body, paging,
throttling) and are added here for all of them at once, with the body they carry.
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What was wrong, in words a person can act on")


# A 400 names each wrong field with its messages ({"image_url": ["..."]}), or says what was wrong
# with the request as a whole ({"detail": "..."}).
INVALID_REQUEST = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": {
        "oneOf": [
            {"type": "array", "items": {"type": "string"}},
            {"type": "string"},
            {"type": "object"},
        ]
    },
}

ANSWERS = {
    "400": (INVALID_REQUEST, "The request is invalid; the body says what was wrong"),
    "401": (ErrorSerializer, "No valid credentials were given"),
    "403": (ErrorSerializer, "The caller may not do this"),
    "404": (ErrorSerializer, "No such object visible to the caller (or no such page)"),
    "409": (ErrorSerializer, "The object's state does not allow this now; the body says why"),
    "415": (ErrorSerializer, "The body is in a media type this operation does not read"),
    "429": (ErrorSerializer, "Too many requests; Retry-After says when to try again"),
    "503": (
        ErrorSerializer,
        "A service the portal needs (database, object store, queue) is unavailable; try again",
    ),
}


class SkinSightAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code in self._refusals():
            if code not in responses:
                body, description = ANSWERS[code]
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(response=body, description=description), code
                )
        return responses

    def _refusals(self) -> list[str]:
        codes = ["503"]
        if self.method in ("POST", "PUT", "PATCH"):
            codes += ["400", "409", "415"]
        elif self.method == "DELETE":
            codes.append("409")
        elif self._has_query_parameter():
            codes.append("400")
        if not all(issubclass(p, AllowAny) for p in self.view.permission_classes):
            codes += ["401", "403"]
        if "{" in self.path or self._is_paginated() or self._has_query_parameter("page"):
            codes.append("404")
        if self.method != "GET" or self.view.throttle_classes:
            codes.append("429")
        return codes

    def _has_query_parameter(self, name: str | None = None) -> bool:
        return any(
            p.get("in") == "query" and name in (None, p.get("name"))
            for p in self._get_parameters()
            if isinstance(p, dict)
        )

    def _is_paginated(self) -> bool:
        return self.method == "GET" and self._is_list_view() and self._get_paginator() is not None


# Filters a page's search form shares with the API, where an empty value means "any".
FILTERS_THAT_MAY_BE_EMPTY = {"/api/review-queue/": ("reviewed", "refer", "top_class", "since", "until",
                                                    "patient", "q")}  # fmt: skip


# DRF's text fields refuse NUL characters, and (trimming spaces) text that is only spaces where
# blank is not allowed.
NO_NUL = "^[^\\u0000]*$"
SOME_TEXT = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"


def describe_what_serializers_cannot(result, generator, request, public):
    """Rules a serializer cannot state: what text fields accept; an upload gives exactly one of
    ``image`` (a file) and ``image_url``; the review queue's filters may be sent empty, as its
    page's form sends them."""
    schemas = result.get("components", {}).get("schemas", {})
    for name, component in schemas.items():
        if name.endswith("Request"):
            for field in component.get("properties", {}).values():
                if field.get("type") == "string" and not (
                    {"format", "enum", "pattern"} & set(field)
                ):
                    field["pattern"] = SOME_TEXT if field.get("minLength", 0) >= 1 else NO_NUL
    upload = schemas.get("CaseUploadRequest")
    if upload is not None:
        upload["oneOf"] = [{"required": ["image"]}, {"required": ["image_url"]}]
    for path, names in FILTERS_THAT_MAY_BE_EMPTY.items():
        for parameter in result["paths"].get(path, {}).get("get", {}).get("parameters", []):
            if parameter["in"] == "query" and parameter["name"] in names:
                parameter["allowEmptyValue"] = True
    return result
