"""The console in a real browser: an admin's whole round, from an empty gateway to a fixed mapping.

Runs on SQLite only: the pages' queries are covered on PostgreSQL by test_pages.py, and the
browser round would double the run's time for nothing more. Set ``CONSOLE_SCREENSHOTS`` to a
folder to keep screenshots of the main screens (``docs/screenshots/make.py`` does).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway.connectors import sample_delivery
from gateway.services import Gateway
from gateway.verify import sign
from gateway.worker import Worker
from tests.conftest import ADMIN_TOKEN

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]

WAIT_S = 10
MAPPING = {
    "name": "rfid-moves",
    "description": "Xemelgo moves to Inventory_Item__c",
    "upserts": [
        {
            "key": "item",
            "object": "Inventory_Item__c",
            "external_id_field": "Xemelgo_Id__c",
            "external_id": "payload.data.itemId",
            "fields": {
                "Sku__c": "payload.data.sku",
                "Location__c": "payload.data.toLocation.name",
            },
        }
    ],
}


class Ui:
    """What an admin does on the pages: open, fill, tick, press; each press waits for the page."""

    def __init__(self, driver: Any, base_url: str) -> None:
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import Select, WebDriverWait

        self.driver, self.base_url = driver, base_url
        self.by, self.ec, self.select_class = By, expected_conditions, Select
        self.wait = WebDriverWait(driver, WAIT_S)
        self.settling = WebDriverWait(driver, WAIT_S, ignored_exceptions=(WebDriverException,))

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def find(self, css: str) -> Any:
        return self.driver.find_element(self.by.CSS_SELECTOR, css)

    def text(self) -> str:
        return str(self.find("main").text)

    def fill(self, field_id: str, value: str) -> None:
        field = self.driver.find_element(self.by.ID, field_id)
        field.clear()
        field.send_keys(value)

    def choose(self, field_id: str, value: str) -> None:
        self.select_class(self.driver.find_element(self.by.ID, field_id)).select_by_value(value)

    def tick(self, value: str) -> None:
        """Tick the visible checkbox whose value is ``value`` (an event type)."""
        box = self.find(f"fieldset:not([hidden]) input[type=checkbox][value='{value}']")
        if not box.is_selected():
            box.click()

    def press(self, label: str, *, confirm: bool = False) -> None:
        """Press the button called ``label`` and wait for the page it leads to."""
        xpath = f"//main//button[normalize-space()='{label}']"
        old = self.find("html")
        # Found and clicked in one go, again while the page is still settling: a button found
        # a moment before its node is replaced cannot be clicked ("does not belong to the
        # document").
        self.settling.until(lambda driver: driver.find_element(self.by.XPATH, xpath).click() or 1)
        if confirm:
            self.wait.until(self.ec.alert_is_present()).accept()
        self.left(old)

    def follow(self, link_text: str) -> None:
        old = self.find("html")
        self.driver.find_element(self.by.LINK_TEXT, link_text).click()
        self.left(old)

    def left(self, old: Any) -> None:
        """Wait until ``old`` (the previous page's root) is gone. Chrome says so as a stale
        element, or at times as a node that "does not belong to the document"."""
        from selenium.common.exceptions import WebDriverException

        def gone(_: Any) -> bool:
            try:
                old.is_enabled()
            except WebDriverException:  # StaleElementReferenceException among them
                return True
            return False

        self.wait.until(gone, "the page never changed")

    def sees(self, words: str) -> None:
        self.wait.until(lambda _: words in self.text(), f"the page never showed {words!r}")

    def shot(self, name: str) -> None:
        """Keep a full-page screenshot when CONSOLE_SCREENSHOTS names a folder."""
        folder = os.environ.get("CONSOLE_SCREENSHOTS")
        if not folder:
            return
        size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"captureBeyondViewport": True, "clip": clip}
        )
        (Path(folder) / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))

    def first_tab_stop(self) -> str:
        """The text of what the keyboard reaches first on the page."""
        from selenium.webdriver.common.keys import Keys

        self.find("body").send_keys(Keys.TAB)
        return str(self.driver.switch_to.active_element.text)

    def script_errors(self) -> list[str]:
        """What the pages' scripts reported as errors (4xx answers to forms are meant)."""
        entries = self.driver.get_log("browser")
        return [e["message"] for e in entries if e.get("source") != "network"]

    def set_document(self, document: Any) -> None:
        self.fill("f-document", json.dumps(document, indent=2))


def deliver(gw: Gateway, base_url: str, token: str, secret: str) -> None:
    """Post a sample Xemelgo delivery signed as Xemelgo signs it, as the sender would."""
    profile = gw.connectors.get("xemelgo")
    body, headers = sample_delivery(profile, "inventory.moved")
    headers.update(sign(profile.verification, secret, body))
    answer = requests.post(f"{base_url}/hooks/{token}", data=body, headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 1


def test_an_admin_connects_a_sender_and_fixes_a_failing_mapping(
    page: Any, live_server: str, gw: Gateway
) -> None:
    ui = Ui(page, live_server)
    worker = Worker(gw, worker_id="console-test")
    secret = "xemelgo-" + secrets.token_hex(16)

    ui.open("/admin/groups")
    ui.sees("Sign in")
    ui.fill("f-token", ADMIN_TOKEN)
    ui.press("Sign in")
    ui.sees("Webhook groups")
    assert ui.first_tab_stop() == "Skip to content"

    ui.follow("New group")
    ui.fill("f-name", "Warehouse RFID")
    ui.choose("f-choice", "xemelgo/webhooks")
    ui.tick("inventory.moved")
    ui.fill("f-secret", secret)
    ui.shot("group-new")
    ui.press("Create group")
    ui.sees("Its secret is stored and will not be shown again")
    assert secret not in page.page_source
    callback_url = ui.find("#f-callback").get_attribute("value")
    ui.find("button[data-copy]").click()
    ui.sees("Copied")

    ui.follow("Mappings")
    ui.fill("f-name", "rfid-moves")
    ui.press("Open the editor")
    ui.set_document({**MAPPING, "upserts": [{"key": "item", "object": "Inventory Item"}]})
    ui.press("Save as new version")
    ui.sees("The mapping document has 3 problems")
    problems = ui.find("#problems").text
    assert "upserts[0].object" in problems and "upserts[0].external_id_field" in problems
    assert ui.find("#f-document").get_attribute("aria-invalid") == "true"
    assert page.find_elements(ui.by.CSS_SELECTOR, ".editor-backdrop mark")
    ui.shot("mapping-editor-error")
    ui.set_document(MAPPING)
    ui.press("Save as new version")
    ui.sees("Saved as version 1")

    ui.open("/admin/groups")
    ui.follow("Warehouse RFID")
    ui.find("a[aria-label='Clone Template']").click()
    ui.sees("Clone Template")
    ui.fill("f-label", "Moves to inventory")
    ui.tick("inventory.moved")
    ui.choose("f-mapping", "rfid-moves")
    ui.press("Create record")
    ui.sees("Webhook record created")
    assert "Moves to inventory" in ui.find("table.records").text
    ui.shot("group-detail")

    deliver(gw, live_server, callback_url.rsplit("/", 1)[1], secret)
    assert worker.drain() == 1
    ui.follow("Events")
    ui.find("table tbody a").click()
    ui.sees("Attempts and records")
    assert "delivered" in ui.find("h1").text
    ui.follow("Inventory_Item__c inv-test-000987")
    ui.sees("Test Warehouse / Aisle 04")
    event_url = ui.find("a[href*='/admin/events/']").get_attribute("href")

    # Break the mapping: the external id now yields null, so a replay fails and says why.
    ui.open("/admin/mappings/rfid-moves")
    broken = json.loads(json.dumps(MAPPING))
    broken["upserts"][0]["external_id"] = "payload.data.nothing"
    ui.set_document(broken)
    ui.press("Save as new version")
    ui.sees("Saved as version 2")
    page.get(event_url)
    ui.press("Replay")
    ui.sees("Event queued again")
    worker.drain()
    page.refresh()
    assert "failed" in ui.find("h1").text
    assert "item" in ui.find(".alert").text
    ui.shot("event-detail")

    # Fix it: preview the fix on the stored event, save, then replay every failed event.
    ui.open("/admin/mappings/rfid-moves")
    ui.set_document(MAPPING)
    ui.press("Preview")
    ui.sees("The saved version fails on this event")
    assert "inv-test-000987" in ui.find(".preview").text
    ui.shot("mapping-preview")
    ui.press("Save as new version")
    ui.sees("Saved as version 3")

    ui.follow("Events")
    ui.choose("f-status", "failed")
    ui.press("Filter")
    ui.press("Replay all matching", confirm=True)
    ui.sees("Replay of 1 event")
    ui.sees("1 of 1 still waiting")
    worker.drain()
    ui.sees("Done: all 1 processed")
    assert "delivered" in ui.find(".counts").text
    ui.shot("replay-progress")
    ui.follow("Back to the event log")
    ui.shot("events")

    page.get(event_url)
    assert "delivered" in ui.find("h1").text
    ui.follow("Overview")
    ui.sees("Deliveries, last 60 minutes")
    ui.shot("overview")
    ui.follow("Groups")
    ui.shot("groups")
    assert ui.script_errors() == []
