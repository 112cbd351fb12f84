"""Photos from other sources: registered frozen and hashed, judged on by the gate, shown first."""

import csv
import hashlib
import json
import shutil

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from tests.factories import AdminFactory, DatasetFactory, ModelVersionFactory, UserFactory
from tests.ml.synthetic import write_tiny_dataset
from tests.modelops_rows import judged
from webapp.modelops.judging import (
    comparison,
    evaluation_set_current,
    external_set_current,
    judging_sets,
    promotion_gate,
)
from webapp.modelops.models import (
    EvaluationSet,
    EvaluationSetKind,
)
from webapp.modelops.services.common import ModelOpsError, PromotionRefused
from webapp.modelops.services.external_sets import external_set_register
from webapp.modelops.services.registry import model_version_activate, model_version_promote

pytestmark = pytest.mark.django_db


@pytest.fixture
def external_folder(tmp_path):
    """Seven classes, three photos each, in the labels.csv layout photos from elsewhere come in."""
    return write_tiny_dataset(
        tmp_path / "elsewhere", per_class=3, size=24, seed=11, layout="snapshot"
    )


def _rows(folder):
    with open(folder / "labels.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _write_rows(folder, rows):
    with open(folder / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_registering_freezes_every_photo_by_hash_and_refuses_a_second_copy(
    external_folder, s3_client, settings, bucket_keys
):
    admin = AdminFactory()
    registered = external_set_register(
        name="clinic-b", folder=external_folder, description="a second clinic", registered_by=admin
    )
    assert (registered.kind, registered.image_count, registered.dataset) == ("external", 21, None)
    assert registered.class_counts == dict.fromkeys(registered.class_counts, 3)
    assert external_set_current() == registered
    assert evaluation_set_current() is None  # the held-out set is another thing

    stored = json.loads(
        s3_client.get_object(Bucket=settings.S3_BUCKET, Key=registered.key)["Body"].read()
    )
    assert (
        hashlib.sha256(
            json.dumps(stored, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        == registered.sha256
    )
    keys = bucket_keys("datasets/external/images/")
    assert len(stored["items"]) == 21
    for item in stored["items"]:
        original = external_folder / next(
            r["image"]
            for r in _rows(external_folder)
            if r["image"].endswith(f"{item['image_id']}.jpg")
        )
        assert item["sha256"] == hashlib.sha256(original.read_bytes()).hexdigest()
        assert item["path"] in keys
        body = s3_client.get_object(Bucket=settings.S3_BUCKET, Key=item["path"])["Body"].read()
        assert hashlib.sha256(body).hexdigest() == item["sha256"]

    # The folder may change or vanish; the registered set does not.
    shutil.rmtree(external_folder / "images")
    assert bucket_keys("datasets/external/images/") == keys

    with pytest.raises(ModelOpsError, match="already registered"):
        external_set_register(name="clinic-b", folder=external_folder)


def test_the_same_photos_under_another_name_are_refused(external_folder):
    first = external_set_register(name="clinic-b", folder=external_folder)
    with pytest.raises(ModelOpsError, match=f"already registered as .*{first.name}"):
        external_set_register(name="clinic-c", folder=external_folder)
    assert EvaluationSet.objects.count() == 1


def test_a_bad_folder_is_refused_naming_every_problem_and_nothing_is_stored(
    external_folder, bucket_keys
):
    before = bucket_keys("datasets/")
    rows = _rows(external_folder)
    (external_folder / rows[0]["image"]).write_bytes(b"not a photo at all")
    shutil.copy(external_folder / rows[2]["image"], external_folder / rows[3]["image"])
    _write_rows(external_folder, [r for r in rows if r["dx"] != "vasc"])
    with pytest.raises(ModelOpsError) as refused:
        external_set_register(name="broken", folder=external_folder)
    message = str(refused.value)
    assert "nothing was registered" in message
    assert f"{rows[0]['image']}: " in message and "image" in message.lower()
    assert f"{rows[3]['image']}: the same photo as {rows[2]['image']}" in message
    assert "class vasc: no usable photo" in message
    assert not EvaluationSet.objects.exists()
    assert bucket_keys("datasets/") == before


def test_a_folder_without_labels_or_with_an_unknown_class_is_refused(tmp_path, external_folder):
    with pytest.raises(ModelOpsError, match=r"labels\.csv not found: the folder needs labels\.csv"):
        external_set_register(name="empty", folder=tmp_path)
    rows = _rows(external_folder)
    rows[4]["dx"] = "freckle"
    _write_rows(external_folder, rows)
    with pytest.raises(ModelOpsError, match="freckle"):
        external_set_register(name="odd", folder=external_folder)
    with pytest.raises(ModelOpsError, match="not allowed"):
        external_set_register(name="../etc", folder=external_folder)


def test_the_command_registers_and_says_what_it_froze(external_folder, capsys):
    call_command("register_external_set", "clinic-b", str(external_folder), "--description", "b")
    out = capsys.readouterr().out
    assert "Registered photos from other sources clinic-b (21 images)" in out
    assert "mel 3" in out
    with pytest.raises(CommandError, match="already registered"):
        call_command("register_external_set", "clinic-b", str(external_folder))


# --- the gate on both sets ------------------------------------------------------------------------


def _judged(version, evaluation_set, balanced, melanoma):
    """Numbers with a referral rule, its trade-off curve and one weak class."""
    return judged(
        version,
        evaluation_set,
        balanced,
        melanoma,
        per_class={"df": {"recall": 0.2, "precision": 0.5, "support": 3}},
        referral={
            "threshold": 0.2,
            "melanomas": 3,
            "melanoma_sensitivity": 0.9,
            "benign_referral_rate": 0.8,
            "referral_rate": 0.82,
        },
        referral_tradeoff=[
            {"threshold": t, "melanoma_sensitivity": 1 - t / 2, "benign_referral_rate": 1 - t}
            for t in (0.0, 0.2, 0.5, 1.0)
        ],
    )


@pytest.fixture
def both_sets():
    dataset = DatasetFactory(name="d", location="/data")
    held_out = EvaluationSet.objects.create(
        dataset=dataset, sha256="e" * 64, key="k1", image_count=100, class_counts={}
    )
    external = EvaluationSet.objects.create(
        kind=EvaluationSetKind.EXTERNAL,
        name="clinic-b",
        sha256="f" * 64,
        key="k2",
        image_count=21,
        class_counts={},
    )
    return held_out, external


@pytest.fixture
def active(both_sets):
    held_out, external = both_sets
    version = _judged(ModelVersionFactory(name="old"), held_out, balanced=0.70, melanoma=0.60)
    _judged(version, external, balanced=0.60, melanoma=0.50)
    model_version_activate(version=version, reason="first model")
    return version


def test_the_gate_refuses_a_candidate_worse_on_photos_from_other_sources(active, both_sets):
    held_out, external = both_sets
    # Better on its own split, much worse elsewhere: the trade the gate exists to stop.
    candidate = _judged(ModelVersionFactory(name="new"), held_out, balanced=0.80, melanoma=0.70)
    _judged(candidate, external, balanced=0.45, melanoma=0.52)
    gate = promotion_gate(candidate)
    assert gate["passed"] is False
    assert gate["external_set"] == external.sha256
    failed = [(c["set_kind"], c["metric"]) for c in gate["checks"] if not c["passed"]]
    assert failed == [("external", "balanced_accuracy")]
    assert gate["reasons"] == [
        "Balanced accuracy on photos from other sources would fall from 60.0% to 45.0%, more "
        "than the allowed 2.0 points."
    ]
    with pytest.raises(PromotionRefused, match="photos from other sources"):
        model_version_promote(version=candidate, actor=AdminFactory())
    event = model_version_promote(
        version=candidate, actor=AdminFactory(), reason="the new clinic's photos are not ours"
    )
    assert event.gate["overridden"] is True and len(event.gate["checks"]) == 4


def test_a_candidate_not_yet_judged_on_the_external_set_is_refused(active, both_sets):
    held_out, _ = both_sets
    candidate = _judged(ModelVersionFactory(name="new"), held_out, balanced=0.80, melanoma=0.70)
    gate = promotion_gate(candidate)
    assert gate["passed"] is False
    assert gate["reasons"] == [
        "new has not been evaluated on the photos from other sources clinic-b (ffffffffffff)."
    ]


def test_a_candidate_no_worse_on_either_set_passes(active, both_sets):
    held_out, external = both_sets
    candidate = _judged(ModelVersionFactory(name="new"), held_out, balanced=0.69, melanoma=0.60)
    _judged(candidate, external, balanced=0.61, melanoma=0.50)
    assert promotion_gate(candidate)["passed"] is True
    assert [s.kind for s in judging_sets()] == ["external", "held_out"]


def test_without_an_external_set_the_gate_says_its_judgement_is_narrow(both_sets):
    both_sets[1].delete()
    gate = promotion_gate(ModelVersionFactory(name="lonely"))
    assert any("own dataset's split only" in w for w in gate["warnings"])


def test_the_version_page_shows_both_sets_external_first_with_the_tradeoff(
    active, both_sets, client
):
    held_out, external = both_sets
    candidate = _judged(ModelVersionFactory(name="new"), held_out, balanced=0.80, melanoma=0.70)
    _judged(candidate, external, balanced=0.45, melanoma=0.52)
    sets = comparison(candidate)["sets"]
    assert [s["evaluation_set"] for s in sets] == [external, held_out]
    assert sets[0]["tradeoff"]["chosen"]["benign_referral_rate"] == 0.8

    client.force_login(AdminFactory())
    html = client.get(reverse("modelops:version", args=["new"])).content.decode()
    assert html.index('id="judged-external"') < html.index('id="judged-held_out"')
    assert "Photos from other sources (clinic-b)" in html
    assert html.count('class="tradeoff-chart"') == 2
    assert "90% of the 3 melanomas referred" in html
    assert "Balanced accuracy on photos from other sources would fall" in html


def test_the_model_card_leads_with_photos_from_other_sources(active, client):
    client.force_login(UserFactory())
    html = " ".join(client.get(reverse("modelops:card")).content.decode().split())
    assert html.index('id="external"') < html.index("on its own kind of images")
    assert "It sent <strong>3 of the 3 melanomas</strong> to a clinician" in html
    assert "<strong>80% of the harmless lesions</strong> (about 8 in 10)" in html
    assert "named only 20% of the dermatofibroma photos" in html
    assert 'class="tradeoff-chart"' in html

    api = client.get(reverse("api:model-active")).json()
    assert api["external"]["name"] == "clinic-b"
    assert api["external"]["summary"]["balanced_accuracy"] == 0.60
    assert api["external"]["referral"]["benign_referral_rate"] == 0.8
