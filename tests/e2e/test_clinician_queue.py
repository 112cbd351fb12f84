"""A clinician in a real browser works through the review queue of real photos and corrects one."""

import pytest
from django.conf import settings
from playwright.sync_api import expect

from ml.referral import ReferralRule
from tests.e2e.conftest import chromium
from tests.factories import PASSWORD, CareAssignmentFactory, answer_for
from tests.processes import start_explain_worker, start_web, stop, wait_until
from webapp.cases.models import Case, HeatMap, Review
from webapp.cases.services.predictions import case_record_predictions
from webapp.cases.services.uploads import case_create
from webapp.intake.imaging import normalize_image

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.e2e]

RULE = ReferralRule(malignant_threshold=0.3)


def skewed(towards: str) -> dict[str, float]:
    probabilities = dict.fromkeys(("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"), 0.05)
    probabilities[towards] = 0.70
    return probabilities


@pytest.fixture
def clinic(generated_photos, active_tiny_model, django_capture_on_commit_callbacks):
    """Three real photos of one patient, classified (one of them referred), and their clinician."""
    assignment = CareAssignmentFactory()
    patient, clinician = assignment.patient, assignment.clinician
    cases = []
    for photo, towards in zip(
        list(generated_photos.values())[:3], ("nv", "mel", "bkl"), strict=True
    ):
        image = normalize_image(
            photo.read_bytes(),
            max_bytes=settings.UPLOAD_MAX_BYTES,
            max_pixels=settings.UPLOAD_MAX_PIXELS,
            max_side=settings.UPLOAD_MAX_SIDE,
        )
        with django_capture_on_commit_callbacks(execute=True):
            case = case_create(uploaded_by=patient, patient=patient, image=image).case
        Case.objects.filter(pk=case.pk).update(status="running")
        case_record_predictions(
            model_version=active_tiny_model,
            answers={case.pk: answer_for(skewed(towards), rule=RULE)},
        )
        cases.append(case)
    return {"clinician": clinician, "cases": cases}


@pytest.fixture
def site(clinic, tmp_path):
    # The heat-map worker makes the overlays the results enqueued, while the clinician works.
    explainer = start_explain_worker(tmp_path / "explain.log")
    web, url = start_web(tmp_path / "web.log")
    try:
        yield url
    finally:
        stop(web)
        stop(explainer)


def signed_in(browser, site: str, user):
    page = browser.new_page()
    page.goto(site + "/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    return page


def test_a_clinician_works_through_the_queue(clinic, site):
    clinician, referred = clinic["clinician"], clinic["cases"][1]
    with chromium() as browser:
        page = signed_in(browser, site, clinician)
        page.get_by_role("link", name="Review queue").click()
        assert "3</strong> of 3 cases wait" in page.locator("#queue-counts").inner_html()
        # The referred melanoma comes first.
        first = page.locator("#queue tbody tr").first
        assert "mel" in first.inner_text() and "refer" in first.inner_text()

        page.select_option("#id_refer", "yes")
        page.get_by_role("button", name="Filter").click()
        assert page.locator("#queue tbody tr").count() == 1
        page.locator("#queue tbody tr").first.get_by_role("link", name="Review").click()
        page.wait_for_selector("#prediction:not([hidden])")
        assert "checked by a clinician soon" in page.locator("#advice").inner_text()
        # The heat map arrives after the result; the clinician lays it over the photo.
        overlay = page.locator("#heatmap-overlay")
        assert overlay.is_hidden()
        page.wait_for_selector("#heatmap-toggle:not([disabled])", timeout=120_000)
        page.check("#heatmap-toggle")
        expect(overlay).to_be_visible()  # once the photo under it has loaded
        expect(overlay).to_have_js_property("naturalWidth", referred.image_width)
        expect(overlay).to_have_js_property("naturalHeight", referred.image_height)
        assert "Grad-CAM for mel" in page.locator("#heatmap-status").inner_text()
        # Only a failed heat map offers to be made again.
        expect(page.get_by_role("button", name="Make the heat map again")).to_be_hidden()
        page.select_option("#id_diagnosis", "nv")
        page.fill("#id_notes", "regular network, benign on dermoscopy")
        page.get_by_role("button", name="Record my review").click()
        assert "corrects the model (mel)" in page.locator("#reviews").inner_text()

        page.get_by_role("link", name="Review queue").click()
        assert "2</strong> of 3 cases wait" in page.locator("#queue-counts").inner_html()
    review = Review.objects.get()
    assert (review.case_id, review.diagnosis, review.reviewer) == (referred.pk, "nv", clinician)


def test_a_clinician_asks_again_for_a_heat_map_that_failed(clinic, site):
    clinician, case = clinic["clinician"], clinic["cases"][0]
    wait_until(
        lambda: HeatMap.objects.filter(prediction__case=case, status="done").exists(),
        120,
        "the first heat map made",
    )
    HeatMap.objects.filter(prediction__case=case).update(status="failed", error="worker lost")
    with chromium() as browser:
        page = signed_in(browser, site, clinician)
        page.goto(f"{site}/cases/{case.public_id}/")
        assert "could not be made: worker lost" in page.locator("#heatmap-status").inner_text()
        page.get_by_role("button", name="Make the heat map again").click()
        page.wait_for_selector("#heatmap-toggle:not([disabled])", timeout=120_000)
    assert HeatMap.objects.get(prediction__case=case).status == "done"
