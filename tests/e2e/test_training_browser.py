"""An admin in a real browser starts a training run and watches its progress arrive without reloading."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import chromium
from tests.factories import PASSWORD
from tests.ml.synthetic import write_tiny_dataset
from tests.processes import start_training_worker, start_web, stop
from webapp.modelops.services.external_sets import external_set_register

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.e2e]


@pytest.fixture
def stack(tmp_path, admin, registered_dataset):
    # Photos from other sources registered first, as `manage.py register_external_set` does.
    external_set_register(
        name="elsewhere",
        folder=write_tiny_dataset(tmp_path / "elsewhere", per_class=2, seed=5, layout="snapshot"),
    )
    web, url = start_web(tmp_path / "web.log")
    try:
        yield {"url": url, "admin": admin.username, "dataset": registered_dataset.name}
    finally:
        stop(web)


@pytest.fixture
def browser(stack):
    with chromium() as browser:
        yield browser


def test_admin_starts_a_run_and_watches_it_train(stack, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(stack["url"] + "/accounts/login/?next=/modelops/")
    page.fill("#id_username", stack["admin"])
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/modelops/")
    page.get_by_role("link", name="Start a training run").click()
    page.select_option("#id_dataset", label=stack["dataset"])
    page.select_option("#id_architecture", "basic_cnn")
    page.select_option("#id_preset", "")
    page.fill("#id_image_size", "32")
    page.fill("#id_head_epochs", "6")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url("**/modelops/runs/*/")
    assert page.locator("#status").inner_text() == "Queued"
    page.evaluate("window.__noReload = true")
    # Playwright's expect polls from outside the page: the page's CSP forbids evaluating strings.
    expect(page.locator("#connection")).to_contain_text("Live")

    # The worker starts only now: everything below can only arrive by push (or the poll fallback).
    worker = start_training_worker(tmp_path / "training.log")
    try:
        expect(page.locator("#batch")).to_have_text(re.compile(r"^\d+ / \d+$"), timeout=180_000)
        assert page.locator("#phase").inner_text().startswith("phase 1 of 1")
        page.wait_for_selector("#loss-chart polyline.batch", timeout=60_000)
        page.wait_for_selector("#accuracy-chart circle.val", timeout=120_000)
        expect(page.locator("#status")).to_have_text("Succeeded", timeout=180_000)
    finally:
        stop(worker)
    assert page.evaluate("window.__noReload === true")
    assert page.locator("#candidate-link").inner_text().startswith("basic_cnn-run")
    assert page.locator("#accuracy-chart circle.val").count() == 6
    assert "froze snapshot" in page.locator("#messages").inner_text()
    page.screenshot(path=str(tmp_path / "training.png"), full_page=True)
    # A reload draws the same run from its stored state.
    page.reload()
    assert page.locator("#status").inner_text() == "Succeeded"
    assert page.locator("#accuracy-chart circle.val").count() == 6

    # The candidate's page shows it beside the active model and offers promotion.
    page.locator("#candidate-link").click()
    page.wait_for_selector("#judged-held_out .comparison")
    assert page.locator("#judged-held_out .per-class tbody tr").count() == 7
    # Judged on the photos from other sources as well, and those come first.
    assert (
        page.locator("#judged-external h2").inner_text() == "Photos from other sources (elsewhere)"
    )
    assert page.locator("#judged-external .comparison tbody tr").count() == 7
    assert page.locator(".judged").first.get_attribute("id") == "judged-external"
    page.get_by_role("button", name="Promote").click()
    page.wait_for_url("**/modelops/")
    assert page.locator("#active-model").inner_text().startswith("basic_cnn-run")
    # Everyone's model page leads with how it did on photos from elsewhere.
    page.goto(stack["url"] + "/models/")
    expect(page.locator("#external")).to_have_text("On photos from other clinics and cameras")
