"""The API reference page in a real browser: it shows the gateway's API, and everything the
browser fetched for it came from the gateway itself.

Runs on SQLite only: the page reads no database.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]

WAIT_S = 20


def test_the_reference_shows_every_call_and_loads_nothing_from_elsewhere(page: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    page.get_log("browser")  # what earlier tests left
    page.get(f"{page.base_url}/api/v1/docs")
    title = WebDriverWait(page, WAIT_S).until(
        expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, ".info .title"))
    )
    calls = page.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")

    fetched = page.execute_script(
        "return performance.getEntriesByType('resource').map(entry => entry.name)"
    )
    origin = urlsplit(page.base_url)
    assert title.text.startswith("Webhook gateway API")
    assert "/api/v1/groups" in {call.text for call in calls}
    assert any(url.endswith("/api/v1/openapi.json") for url in fetched)
    elsewhere = [url for url in fetched if urlsplit(url)[:2] != origin[:2]]
    assert elsewhere == []
    # A blocked load (the page's policy allows only this origin) is a console error.
    assert page.get_log("browser") == []
