"""The project's routes plus two baselines measured by the benchmarks, in the same gunicorn.

- `/bench/bare/`: the plainest DRF list of 50 rows (bench_api.py).
- `/bench/contents/<id>/`: table contents the straightforward way (bench_contents_http.py).
"""

from __future__ import annotations

import math
import operator
from pathlib import Path
from typing import Any

import pandas as pd
from django.urls import path
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.utils.urls import remove_query_param, replace_query_param

from mev.resource_types.registry import ResourceType
from mev.resources.contents_apis import _ContentsApi, local_file, query_pairs
from mev.resources.models import Resource
from mev.urls import urlpatterns as project_urlpatterns


class BareResourceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Resource
        fields = ["id", "name", "resource_type", "file_format", "is_active", "status", "size", "created"]


class BareListApi(ListAPIView):
    """Same authentication as the real endpoints; no joins, no nested objects."""

    serializer_class = BareResourceSerializer

    def get_queryset(self):
        return Resource.objects.filter(owner=self.request.user)[:50]


# The comparisons the contents bench sends: `column=[op]:number` filters and `sort_vals=[asc|desc]:column`.
_FILTERS = {"lt": operator.lt, "lte": operator.le, "gt": operator.gt, "gte": operator.ge, "eq": operator.eq}


def straightforward_page(tsv: Path, params: list[tuple[str, str]], *, base_url: str) -> dict[str, Any]:
    """Parse the whole TSV with pandas, filter, sort, every remaining row to a dict, then slice the page."""
    df = pd.read_csv(tsv, sep="\t", index_col=0)
    page, page_size, sort = 1, 50, None
    for key, value in params:
        if key == "page":
            page = int(value)
        elif key == "page_size":
            page_size = int(value)
        elif key == "sort_vals":
            direction, column = value[1:].split("]:", 1)
            sort = (column, direction == "asc")
        elif key in df.columns and value.startswith("["):
            op, operand = value[1:].split("]:", 1)
            df = df[_FILTERS[op](df[key], float(operand))]
    if sort is not None:
        df = df.sort_values(sort[0], ascending=sort[1], na_position="last", kind="stable")
    records = [
        {"rowname": name, "values": {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}}
        for name, row in zip(df.index, df.to_dict(orient="records"), strict=True)
    ]
    count = len(records)
    last = max(1, math.ceil(count / page_size))
    return {
        "count": count,
        "next": replace_query_param(base_url, "page", page + 1) if page < last else None,
        "previous": (replace_query_param(base_url, "page", page - 1) if page > 2
                     else remove_query_param(base_url, "page") if page == 2 else None),
        "results": records[(page - 1) * page_size : page * page_size],
    }


class StraightforwardContentsApi(_ContentsApi):
    """The real contents route's authentication, lookup, checks and renderer, around `straightforward_page`.

    Reads the standardized TSV validation wrote (a field the real route does not read: one more
    query, well under a millisecond).
    """

    def produce(self, request: Request, resource: Resource, handler: ResourceType) -> Any:
        return straightforward_page(local_file(resource.standardized_file), query_pairs(request),
                                    base_url=request.build_absolute_uri())


urlpatterns = [
    path("bench/bare/", BareListApi.as_view()),
    path("bench/contents/<uuid:pk>/", StraightforwardContentsApi.as_view()),
    *project_urlpatterns,
]
