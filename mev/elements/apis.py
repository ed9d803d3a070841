"""Set operations on observation and feature sets (contract §2.7): intersect, union, set difference.

Sets are stored in the browser; these views only compute. The algebra is in `mev.elements.algebra`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mev.core.exceptions import ApplicationError
from mev.elements.algebra import SetOperationError, set_difference_of, set_intersection, set_union

SET_TYPES = ("observation_set", "feature_set")
MIXED_TYPES = "All the sets of one operation must be of the same type (observation sets or feature sets)."


class SetOperationInputSerializer(serializers.Serializer):
    sets = serializers.ListField(child=serializers.JSONField())
    set_type = serializers.ChoiceField(choices=SET_TYPES)
    ignore_attributes = serializers.BooleanField(required=False, default=False)


SET_OPERATION_RESULT = inline_serializer(
    "SetOperationResult", {"elements": serializers.ListField(child=serializers.DictField())}
)

ERRORS_NOTE = (
    "\n\nRequest: `{sets: [{elements: [{id, attributes?}]}, ...], set_type: observation_set|feature_set, "
    "ignore_attributes?: bool}`; other keys are ignored. A set that states its own `set_type` different "
    "from the request's is 400 `{\"set_type\": ...}` (mixed set types). Fewer than two sets, or a malformed "
    'set, is 400 `{"sets": ...}`. Conflicting attribute values, unless `ignore_attributes` is true, are '
    '400 `{"error": ...}`. The answer is `{"elements": [{id, attributes}]}`, sorted by id.'
)


def _check_types(sets: list[Any], set_type: str) -> None:
    for element_set in sets:
        if isinstance(element_set, dict):
            declared = element_set.get("set_type")
            if declared is not None and declared != set_type:
                raise ApplicationError(body={"set_type": MIXED_TYPES})


def _run(request: Request, operation: Callable[..., list[dict[str, Any]]]) -> Response:
    data = SetOperationInputSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    sets = data.validated_data["sets"]
    _check_types(sets, data.validated_data["set_type"])
    try:
        elements = operation(sets, ignore_attributes=data.validated_data["ignore_attributes"])
    except SetOperationError as exc:
        raise ApplicationError(body={exc.field: exc.message}) from exc
    return Response({"elements": elements})


class SetIntersectionApi(APIView):
    @extend_schema(
        request=SetOperationInputSerializer,
        responses={200: SET_OPERATION_RESULT},
        description="Elements present in every set, attributes merged." + ERRORS_NOTE,
    )
    def post(self, request: Request) -> Response:
        return _run(request, set_intersection)


class SetUnionApi(APIView):
    @extend_schema(
        request=SetOperationInputSerializer,
        responses={200: SET_OPERATION_RESULT},
        description="Elements present in any set, attributes merged." + ERRORS_NOTE,
    )
    def post(self, request: Request) -> Response:
        return _run(request, set_union)


class SetDifferenceApi(APIView):
    @extend_schema(
        request=SetOperationInputSerializer,
        responses={200: SET_OPERATION_RESULT},
        description="Exactly two sets: the elements of the first that are not in the second, with the first's "
        'attributes. More than two sets is 400 `{"sets": ...}`.' + ERRORS_NOTE,
    )
    def post(self, request: Request) -> Response:
        return _run(request, set_difference_of)
