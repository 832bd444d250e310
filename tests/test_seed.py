"""The demo data: the agency's staff work on Bluebell only, and Bluebell's reviewer approves its posts."""

from __future__ import annotations

from saas import seed
from tests.factories import app_context


def test_demo_agency_setup(client):
    with app_context():
        assert seed.seed_demo() is True
        assert seed.seed_demo() is False
    client.log_in("staff@northwind.example", "northwind-staff-demo")
    assert client.get("/w/bluebell-bakery/calendar").status_code == 200
    assert client.get("/w/harbor-dental/calendar").status_code == 404
    composer = client.get("/w/bluebell-bakery/posts/new").get_data(as_text=True)
    assert "Submit for approval" in composer and "Northwind Social for Bluebell Bakery" in composer
