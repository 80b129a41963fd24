"""The S3 blob store against moto's S3 server, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import os
import uuid

import boto3
import pytest
import requests
import sqlalchemy as sa

from ngshare_gql import create_app
from ngshare_gql.config import MB, Settings
from ngshare_gql.extensions import db
from ngshare_gql.models import Blob, BlobChunk
from tests.conftest import release, sha, submit

S3_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def new_bucket(endpoint: str) -> str:
    name = f"ngshare-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint).create_bucket(Bucket=name)
    return name


def s3_client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **S3_CREDENTIALS)


def s3_settings(db_url: str, endpoint: str, bucket: str, **extra) -> Settings:
    return Settings(
        database_url=db_url,
        auth="dev",
        admins=("admin",),
        blob_store="s3",
        s3_bucket=bucket,
        s3_prefix="blobs/",
        s3_endpoint_url=endpoint,
        s3_region="us-east-1",
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
        s3_multipart_threshold=5 * MB,
        **extra,
    )


@pytest.fixture
def settings(db_url, s3_server) -> Settings:
    return s3_settings(db_url, s3_server, new_bucket(s3_server))


def stored(app) -> set[str]:
    """Hashes whose bytes the store holds (objects or chunks), whatever the Blob table says."""
    settings = app.extensions["ngshare"].settings
    with app.app_context():
        if settings.blob_store == "s3":
            listing = s3_client(settings.s3_endpoint_url).list_objects_v2(
                Bucket=settings.s3_bucket, Prefix=settings.s3_prefix
            )
            return {o["Key"][len(settings.s3_prefix) :] for o in listing.get("Contents", [])}
        return set(db.session.scalars(sa.select(BlobChunk.sha256).distinct()))


def indexed(app) -> set[str]:
    with app.app_context():
        return set(db.session.scalars(sa.select(Blob.sha256)))


def download(app, url: str, token: str) -> bytes:
    response = app.test_client().get(url, headers={"Authorization": f"token {token}"})
    assert response.status_code == 200, response.data[:300]
    return response.data


def test_s3_stores_each_content_once_and_streams_it_back(app, as_user, course):
    ins, s1 = as_user("ins"), as_user("s1")
    files = {"a.ipynb": b'{"cells": []}', "copy.ipynb": b'{"cells": []}', "b.txt": b"b" * 3000}
    rel = release(ins, "c1", "ps1", files)
    assert stored(app) == indexed(app) == {sha(b'{"cells": []}'), sha(b"b" * 3000)}
    for f in rel["files"]:
        assert sha(download(app, f["url"], "s1")) == f["sha256"]
    # Submitting the same bytes again stores nothing new.
    submit(s1, "c1", "ps1", {"a.ipynb": b'{"cells": []}'})
    assert len(stored(app)) == 2
    assert app.extensions["ngshare"].blobs.check() is None


def test_s3_large_files_go_up_in_parts(app, as_user, course, tmp_path):
    big = os.urandom(256 * 1024) * 48  # 12 MiB, over the 5 MiB multipart threshold
    rel = release(as_user("ins"), "c1", "big", {"big.bin": big})
    settings = app.extensions["ngshare"].settings
    head = s3_client(settings.s3_endpoint_url).head_object(
        Bucket=settings.s3_bucket, Key="blobs/" + sha(big)
    )
    assert head["ContentLength"] == len(big)
    assert head["ETag"].strip('"').endswith("-3")  # a multipart upload's ETag: 3 parts
    response = app.test_client().get(rel["files"][0]["url"], headers={"Authorization": "token s1"})
    assert response.is_streamed and response.content_length == len(big)
    assert sha(response.data) == sha(big)


def test_s3_presigned_downloads_redirect_to_a_short_lived_url(app, as_user, course):
    content = b"presigned bytes"
    rel = release(as_user("ins"), "c1", "ps1", {"dir/notes.txt": content})
    settings = dataclasses.replace(
        app.extensions["ngshare"].settings, s3_presign_downloads=True, s3_presign_expiry=120
    )
    presigning = create_app(settings)
    url = rel["files"][0]["url"]
    response = presigning.test_client().get(url, headers={"Authorization": "token s1"})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(settings.s3_endpoint_url) and "X-Amz-Expires=120" in location
    assert response.headers["ETag"] == f'"{sha(content)}"'
    fetched = requests.get(location, timeout=10)
    assert fetched.status_code == 200 and fetched.content == content
    assert "notes.txt" in fetched.headers["Content-Disposition"]
    # Unset, a link lives a minute: it is a bearer URL, usable after access ends.
    default = dataclasses.replace(settings, s3_presign_expiry=Settings.s3_presign_expiry)
    response = create_app(default).test_client().get(url, headers={"Authorization": "token s1"})
    assert "X-Amz-Expires=60&" in response.headers["Location"] + "&"
    # Authorization still applies before any redirect: another course's student gets nothing.
    denied = presigning.test_client().get(url, headers={"Authorization": "token t1"})
    assert denied.status_code in (403, 404) and "Location" not in denied.headers
    with presigning.app_context():
        db.engine.dispose()


def test_s3_upload_restores_an_object_lost_behind_the_index(app, as_user, course):
    content = b"lost and found"
    release(as_user("ins"), "c1", "ps1", {"a.txt": content})
    settings = app.extensions["ngshare"].settings
    s3_client(settings.s3_endpoint_url).delete_object(
        Bucket=settings.s3_bucket, Key="blobs/" + sha(content)
    )
    sub = submit(as_user("s1"), "c1", "ps1", {"a.txt": content})
    assert sha(download(app, sub["files"][0]["url"], "s1")) == sha(content)


def test_s3_settings_are_checked(db_url, s3_server):
    with pytest.raises(ValueError, match="ADDRESSING_STYLE"):
        create_app(s3_settings(db_url, s3_server, "b", s3_addressing_style="sideways"))
    app = create_app(s3_settings(db_url, s3_server, "no-such-bucket-here"))
    with app.app_context(), pytest.raises(Exception, match="404|Not Found|NoSuchBucket"):
        app.extensions["ngshare"].blobs.check()


