import json
import uuid

import pytest

from webapp.storage import store


def test_result_json_is_rewritten_in_place_by_a_retried_job(bucket_keys, s3_client, settings):
    key = store.case_result_key("case-uuid", "model-a")
    store.put_json(key, {"attempt": 1}, what="a result")
    store.put_json(key, {"attempt": 2}, what="a result")
    assert {k for k in bucket_keys("cases/results/case-uuid/")} == {key}
    body = s3_client.get_object(Bucket=settings.S3_BUCKET, Key=key)["Body"].read()
    assert json.loads(body) == {"attempt": 2}


def test_uploads_never_overwrite_an_existing_key(bucket_keys):
    key = store.case_image_key("jpg")
    store.put_new(key, b"first", what="the photo")
    with pytest.raises(store.StorageUnavailable, match="the photo under a fresh key"):
        store.put_new(key, b"second", what="the photo")
    assert store.read(key, what="the photo") == b"first"
    assert {k for k in bucket_keys("cases/images/") if k.startswith(key[:-4])} == {key}


def test_a_missing_object_is_named_as_missing_not_as_an_outage():
    with pytest.raises(store.ObjectMissing, match=r"model bundle x \(models/x/none.zip\) does not"):
        store.read("models/x/none.zip", what="model bundle x")


def test_an_unreachable_store_names_what_was_being_read(settings):
    settings.S3_ENDPOINT_URL = "http://127.0.0.1:9"
    # The store keeps a client per configuration, so the next read uses the dead endpoint.
    with pytest.raises(store.StorageUnavailable, match="Could not read model bundle y"):
        store.read("models/y/a.zip", what="model bundle y")


def test_prefix_listing_and_deletion(bucket_keys):
    # The bucket outlives each test: a fresh prefix keeps other tests' objects out of the count.
    base = f"training/runs/{uuid.uuid4().hex}"
    for name in ("a", "b"):
        store.put(f"{base}/r1/{name}.txt", b"x", what="a log")
    store.put(f"{base}/r2/keep.txt", b"x", what="a log")
    assert [k for k, _ in store.list_prefix(f"{base}/r1/", what="logs")] == [
        f"{base}/r1/a.txt",
        f"{base}/r1/b.txt",
    ]
    assert store.delete_prefix_quietly(f"{base}/r1/") == 2
    assert bucket_keys(f"{base}/") == {f"{base}/r2/keep.txt"}


def test_keys_that_need_quoting_are_the_same_key_for_both_clients(bucket_keys):
    # Photos and results go through signed requests, listing and deletion through boto3: a key
    # quoted differently by the two would be written under one name and listed under another.
    base = f"training/runs/{uuid.uuid4().hex}"
    key = f"{base}/a b+c~(1)é.txt"
    store.put(key, b"payload", what="a log")
    assert store.read(key, what="a log") == b"payload"
    assert bucket_keys(f"{base}/") == {key}
    assert store.delete_prefix_quietly(f"{base}/") == 1


def test_refused_credentials_are_an_outage_not_a_missing_object(settings):
    settings.S3_SECRET_ACCESS_KEY = "not-the-secret"
    with pytest.raises(store.StorageUnavailable, match="Could not read the photo") as raised:
        store.read("cases/images/none.jpg", what="the photo")
    assert not isinstance(raised.value, store.ObjectMissing)
    with pytest.raises(store.StorageUnavailable, match="Could not store the photo"):
        store.put_new(store.case_image_key("jpg"), b"x", what="the photo")
