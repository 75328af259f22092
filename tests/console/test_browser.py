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
        """Tick the visible checkbox whose value is ``value`` (an event type, a status)."""
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

    def tick_off(self, value: str) -> None:
        box = self.find(f"input[type=checkbox][value='{value}']")
        if box.is_selected():
            box.click()

    def set_document(self, document: Any) -> None:
        self.fill("f-document", json.dumps(document, indent=2))


def deliver(
    gw: Gateway, base_url: str, token: str, secret: str, timestamp_ms: int | None = None
) -> None:
    """Post a sample Xemelgo delivery signed as Xemelgo signs it, as the sender would; sent at
    ``timestamp_ms`` when given, so that it is not a duplicate of the sample."""
    profile = gw.connectors.get("xemelgo")
    body, headers = sample_delivery(profile, "inventory.moved")
    if timestamp_ms is not None:
        body = json.dumps({**json.loads(body), "eventTimestamp": timestamp_ms}).encode()
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
    ui.tick("failed")
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


#: A phone's viewport, as narrow as the console must fit without scrolling sideways.
PHONE = {"width": 375, "height": 812, "deviceScaleFactor": 1, "mobile": False}


def wider(page: Any) -> list[str]:
    """The elements reaching past the viewport's right edge, to say what overflows."""
    return list(
        page.execute_script(
            "const clipped = (e) => { for (let p = e.parentElement; p; p = p.parentElement)"
            " if (getComputedStyle(p).overflowX !== 'visible') return true; return false; };"
            "return [...document.querySelectorAll('main *, header *')]"
            ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)"
            ".filter(e => !clipped(e))"
            ".slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round("
            "e.getBoundingClientRect().right))"
        )
    )


class Api:
    """The admin API of the live server, over real HTTP."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url + "/api/v1"
        self.headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def call(self, method: str, path: str, body: Any = None) -> Any:
        answer = requests.request(
            method, self.base_url + path, json=body, headers=self.headers, timeout=10
        )
        assert answer.status_code < 300, answer.text
        return answer.json()


def test_an_admin_s_daily_round_of_events_records_groups_and_targets(
    page: Any, live_server: str, gw: Gateway
) -> None:
    ui, api = Ui(page, live_server), Api(live_server)
    worker = Worker(gw, worker_id="console-daily")
    secret = "xemelgo-" + secrets.token_hex(16)
    api.call("PUT", "/mappings/rfid-moves", MAPPING)
    group = api.call(
        "POST",
        "/groups",
        {
            "name": "Warehouse RFID",
            "connector": "xemelgo",
            "function": "webhooks",
            "events": ["inventory.moved"],
            "secret": secret,
        },
    )
    api.call(
        "POST",
        f"/webhooks/{group['template_webhook_id']}/clone",
        {"label": "Moves", "events": ["inventory.moved"], "mapping": "rfid-moves"},
    )
    api.call(
        "POST",
        "/groups",
        {
            "name": "Open sender",
            "connector": "generic",
            "function": "webhooks",
            "events": ["order.created"],
            "secret": "-",
        },
    )
    ui.open("/admin/groups")
    ui.fill("f-token", ADMIN_TOKEN)
    ui.press("Sign in")

    # Only the group that checks nothing wears the badge.
    rows = {
        row.find_element(ui.by.TAG_NAME, "a").text: row.text
        for row in page.find_elements(ui.by.CSS_SELECTOR, "table tbody tr")
    }
    assert "unverified" in rows["Open sender"] and "unverified" not in rows["Warehouse RFID"]

    # A test event from the group's page goes through the receive path, signed.
    ui.follow("Warehouse RFID")
    ui.press("Send test event")
    ui.sees("Test event sent: 1 accepted")
    assert worker.drain() == 1

    # The event log follows new events without a reload, within its filters.
    ui.follow("Events")
    ui.tick("delivered")
    ui.tick("failed")
    ui.fill("f-contains", "inv-test")
    ui.press("Filter")
    assert ui.find("#f-follow").is_selected()
    shown = len(page.find_elements(ui.by.CSS_SELECTOR, "#event-table tbody tr"))
    root = ui.find("html")
    deliver(gw, live_server, group["callback_url"].rsplit("/", 1)[1], secret, 1765573600000)
    worker.drain()
    ui.wait.until(
        lambda _: len(page.find_elements(ui.by.CSS_SELECTOR, "#event-table tbody tr")) == shown + 1,
        "the log never showed the new event",
    )
    assert root.is_enabled()  # the same page: only its table was fetched again
    ui.shot("events")

    # The record it wrote, found by search, with the events that wrote it.
    ui.follow("Records")
    ui.sees("Inventory_Item__c")
    ui.follow("Inventory_Item__c")
    ui.fill("f-contains", "aisle 04")
    ui.press("Search")
    ui.find("table.record-list tbody a").click()
    ui.sees("Events that wrote it")
    assert len(page.find_elements(ui.by.CSS_SELECTOR, "table.history tbody tr")) == 2
    ui.shot("record-detail")

    # The editor colours the document and shows the preview beside it.
    ui.open("/admin/mappings/rfid-moves")
    assert page.find_elements(ui.by.CSS_SELECTOR, ".editor.highlighted .editor-backdrop .tok-key")
    ui.press("Preview")
    ui.sees("Nothing was written")
    editor, preview = ui.find("#f-document"), ui.find(".preview")
    assert preview.location["x"] > editor.location["x"] + editor.size["width"] / 2
    assert preview.location["y"] < editor.location["y"] + editor.size["height"]
    ui.shot("mapping-preview")

    ui.follow("Targets")
    ui.sees("local")
    ui.shot("targets")

    # On a phone, no page scrolls sideways.
    paths = [
        "/admin/",
        "/admin/groups",
        f"/admin/groups/{group['id']}",
        "/admin/events",
        "/admin/records/Inventory_Item__c",
        "/admin/records/Inventory_Item__c/inv-test-000987",
        "/admin/mappings/rfid-moves",
        "/admin/targets",
        "/admin/alerts",
    ]
    page.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    try:
        for path in paths:
            ui.open(path)
            ui.wait.until(lambda _: ui.find("main"))
            wide = page.execute_script(
                "return [document.documentElement.scrollWidth, window.innerWidth]"
            )
            assert wide[1] == PHONE["width"]
            assert wide[0] <= wide[1], f"{path} scrolls sideways: {wide} {wider(page)}"
        ui.open("/admin/events")
        ui.shot("phone-events")
    finally:
        page.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert ui.script_errors() == []
