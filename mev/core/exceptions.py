"""The one error envelope: every API error is a JSON object the web client can read (contract §1.6)."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from mev.core.middleware import current_request_id

logger = logging.getLogger("mev.errors")


class ApplicationError(exceptions.APIException):
    """A business-rule failure with a message the user should read.

    `body` is the exact JSON object sent, so a service can keep the key the client reads
    (`{"message": ...}`, `{"workspace_name": ...}`, `{"error": ...}`).
    """

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "The request could not be carried out."
    default_code = "invalid"

    def __init__(self, message: str | None = None, *, field: str = "detail", status_code: int | None = None,
                 body: dict[str, Any] | None = None) -> None:
        message = message or str(self.default_detail)
        super().__init__(message)
        if status_code is not None:
            self.status_code = status_code
        self.body = body if body is not None else {field: message}


def unexpected_error_body() -> dict[str, str]:
    return {
        "error": "An unexpected error occurred on the server. It has been logged; "
        f"quote reference {current_request_id()} if you report it."
    }


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response(exc.body, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, SuspiciousOperation):
        # e.g. more query parameters than DATA_UPLOAD_MAX_NUMBER_FIELDS: a 400 naming the limit, as
        # Django itself answers outside DRF, not an unexpected error.
        logging.getLogger(f"django.security.{exc.__class__.__name__}").warning("%s", exc)
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)

    response = drf_exception_handler(exc, context)
    if response is not None:
        if not isinstance(response.data, dict):
            # A bare list or string would be walked character by character by the client.
            response.data = {"detail": response.data}
        return response

    request = context.get("request")
    logger.exception(
        "Unhandled error on %s %s", getattr(request, "method", "?"), getattr(request, "path", "?")
    )
    return Response(unexpected_error_body(), status=status.HTTP_500_INTERNAL_SERVER_ERROR)


def json_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """Django-level 404 (no route matched): JSON, never an HTML page."""
    return JsonResponse({"detail": "Not found."}, status=404)


def json_server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse(unexpected_error_body(), status=500)


def json_bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": "Bad request."}, status=400)


def json_permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": "You do not have permission to perform this action."}, status=403)
