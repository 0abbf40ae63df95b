"""Endpoint templates: ids in a path become ``{id}``, the query goes."""

from __future__ import annotations

import doctest

import pytest

import enduro._endpoints
from enduro._endpoints import endpoint_of


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/api/v2/matches?currentPage=3&itemsPerPage=50", "/api/v2/matches"),
        ("/api/v2/matches/M3F2A9C0B1D2/relationship", "/api/v2/matches/{id}/relationship"),
        ("/api/v2/matches/M3F2A9C0B1D2/badge", "/api/v2/matches/{id}/badge"),
        ("/api/v2/matches/badges", "/api/v2/matches/badges"),
        ("/users/42/items", "/users/{id}/items"),
        ("/users/0", "/users/{id}"),
        ("/api/v2", "/api/v2"),
        ("/", "/"),
        # short names with a digit are names, long ones with a digit are ids
        ("/a/abc1234/b", "/a/abc1234/b"),
        ("/a/abcd1234/b", "/a/{id}/b"),
        # long names without a digit stay
        ("/a/relationship/b", "/a/relationship/b"),
        ("/a/1/2/3", "/a/{id}/{id}/{id}"),
        ("/page#section-12345678", "/page"),
    ],
)
def test_endpoint_of(path: str, template: str) -> None:
    assert endpoint_of(path) == template


@pytest.mark.parametrize(
    ("url", "template"),
    [
        ("http://h:1/api/x/1?q", "/api/x/{id}"),
        ("https://www.example.com/api/v2/matches?currentPage=1", "/api/v2/matches"),
        ("http://h:1", "/"),
    ],
)
def test_endpoint_of_a_full_url(url: str, template: str) -> None:
    assert endpoint_of(url) == template


def test_one_template_for_every_match() -> None:
    paths = [f"/api/v2/matches/M{n:012X}/badge?x={n}" for n in range(1, 200, 7)]
    assert {endpoint_of(path) for path in paths} == {"/api/v2/matches/{id}/badge"}


def test_the_docstring_examples_hold() -> None:
    result = doctest.testmod(enduro._endpoints)
    assert result.attempted >= 3 and result.failed == 0
