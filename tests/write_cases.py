"""One write case per provider collection the mutations cover: what to create, what to update, and an id
the fake does not know. Shared by the provider write tests and the mutation service tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.fakes.provider_server import GENERIC_MUTATIONS


@dataclass(frozen=True)
class Case:
    provider: str
    collection: str
    create: dict[str, Any]
    update: dict[str, Any]
    missing_id: str
    kinds: frozenset[str] = frozenset({"create", "update", "delete"})
    settings: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.provider}-{self.collection}"


CASES = [
    Case(
        "stripe",
        "customers",
        {"email": "ann@example.com", "metadata": {"plan": "pro"}, "preferred_locales": ["en"]},
        {"name": "Ann", "metadata": {"plan": "team", "seats": 3}},
        "cus_missing",
    ),
    Case(
        "stripe",
        "products",
        {"name": "T-shirt", "active": True},
        {"description": "Grey", "active": False},
        "prod_x",
    ),
    Case(
        "github",
        "issues",
        {"title": "Crash on start", "labels": ["bug"], "assignees": ["octocat"]},
        {"state": "closed"},
        "999999",
        frozenset({"create", "update"}),
    ),
    Case("shopify", "products", {"title": "Mug", "tags": ["kitchen", "gift"]}, {"title": "Big mug"}, "1"),
    Case("shopify", "customers", {"email": "ann@example.com", "first_name": "Ann"}, {"note": "vip"}, "1"),
    Case("hubspot", "contacts", {"email": "ann@example.com", "phone": "555-0100"}, {"jobtitle": "CTO"}, "1"),
    Case(
        "hubspot",
        "companies",
        {"name": "Acme", "industry": "COMPUTER_SOFTWARE"},
        {"domain": "acme.test"},
        "1",
    ),
    Case(
        "hubspot",
        "deals",
        {"dealname": "Big one", "amount": 1000, "dealtype": "newbusiness"},
        {"amount": 2000},
        "1",
    ),
    Case(
        "generic",
        "items",
        {"name": "Widget", "color": "red"},
        {"color": "blue"},
        "item_missing",
        settings={"mutations": GENERIC_MUTATIONS},
    ),
]
BY_PROVIDER = {case.provider: case for case in reversed(CASES)}
"""One case per provider (its first collection) for the failure tests."""
DELETABLE = [case for case in CASES if "delete" in case.kinds]
