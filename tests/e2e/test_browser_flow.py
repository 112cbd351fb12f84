"""A person in a real browser: sign up, upload a photo, see the result arrive without reloading."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import chromium
from tests.processes import start_web, start_worker, stop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.e2e]


@pytest.fixture
def browser(stack):
    """Launched after the stack, so every database fixture is set up before it."""
    with chromium() as browser:
        yield browser


@pytest.fixture
def stack(tmp_path, active_tiny_model):
    web, url = start_web(tmp_path / "web.log")
    try:
        yield {
            "url": url,
            "logs": tmp_path,
            "start_worker": lambda: start_worker(tmp_path / "worker.log"),
        }
    finally:
        stop(web)


def sign_up_and_upload(page, url: str, username: str, photo: Path) -> None:
    page.goto(url + "/")
    page.get_by_role("link", name="Sign up").first.click()
    page.fill("#id_username", username)
    page.fill("#id_email", f"{username}@example.org")
    page.fill("#id_password1", "lesion-photo-2026!")
    page.fill("#id_password2", "lesion-photo-2026!")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/cases/upload/")
    page.set_input_files("#id_image", str(photo))
    page.get_by_role("button", name="Upload and classify").click()
    page.wait_for_url("**/cases/*/")
    assert page.locator("#status").inner_text() in {"Queued", "Classifying"}


def test_sign_up_upload_and_see_result_live(stack, upload_photos, browser, tmp_path):
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    url = stack["url"]
    sign_up_and_upload(page, url, "maria", next(iter(upload_photos.values())))
    # Mark this document: if the page reloaded, the mark would be gone.
    page.evaluate("window.__noReload = true")
    # Playwright's expect polls from outside the page: the page's CSP forbids evaluating strings.
    expect(page.locator("#connection")).to_contain_text("Live")

    # The worker starts only now, so the result can only arrive by push.
    worker = stack["start_worker"]()
    try:
        page.wait_for_selector("#prediction:not([hidden])", timeout=180_000)
    finally:
        stop(worker)
    assert page.evaluate("window.__noReload === true")
    assert page.locator("#status").inner_text() == "Done"
    # The lesion's timeline, drawn when the photo was still queued, follows the push too.
    assert page.locator("#timeline .visit.current .status").inner_text() == "Done"
    rows = page.locator("#probabilities tr")
    assert rows.count() == 7
    assert "tiny-test" in page.locator("#model-version").inner_text()
    assert page.locator("#top-class").inner_text().startswith("Most likely:")
    # The referral decision comes first, in plain words.
    assert page.locator("#advice").get_attribute("data-decision") in {"refer", "routine"}
    assert "clinician" in page.locator("#advice").inner_text()
    page.screenshot(
        path=os.environ.get("E2E_SCREENSHOT", str(tmp_path / "result.png")), full_page=True
    )
    # The stored photo is served to its owner.
    image = page.request.get(url + page.locator("img.lesion-photo").get_attribute("src"))
    assert image.status == 200 and image.headers["content-type"] == "image/jpeg"


def test_result_still_arrives_when_the_websocket_keeps_dropping(stack, upload_photos, browser):
    page = browser.new_page()
    drops = []

    def refuse(socket_route):
        drops.append(socket_route.url)
        socket_route.close()

    page.route_web_socket("**/ws/cases/**", refuse)
    sign_up_and_upload(page, stack["url"], "omar", list(upload_photos.values())[1])
    page.evaluate("window.__noReload = true")
    expect(page.locator("#connection")).to_contain_text("Reconnecting")

    worker = stack["start_worker"]()
    try:
        page.wait_for_selector("#prediction:not([hidden])", timeout=180_000)
    finally:
        stop(worker)
    assert drops, "the page never tried the socket"
    assert page.evaluate("window.__noReload === true")
    assert page.locator("#status").inner_text() == "Done"
    assert page.locator("#probabilities tr").count() == 7
