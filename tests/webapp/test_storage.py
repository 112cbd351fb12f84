import json

import pytest

from webapp.cases import storage


def test_result_json_is_rewritten_in_place_by_a_retried_job(bucket_keys, s3_client, settings):
    key = storage.result_key_for("case-uuid", "model-a")
    storage.put_json(key, {"attempt": 1})
    storage.put_json(key, {"attempt": 2})
    assert {k for k in bucket_keys("cases/results/case-uuid/")} == {key}
    body = s3_client.get_object(Bucket=settings.S3_BUCKET, Key=key)["Body"].read()
    assert json.loads(body) == {"attempt": 2}


def test_uploads_never_overwrite_an_existing_key(bucket_keys):
    key = storage.new_image_key("jpg")
    storage.put_bytes(key, b"first")
    with pytest.raises(storage.StorageUnavailable, match="fresh key"):
        storage.put_bytes(key, b"second")
    assert storage.read_bytes(key) == b"first"
    assert {k for k in bucket_keys("cases/images/") if k.startswith(key[:-4])} == {key}
