"""The ``s3`` blob store: contents as objects ``<prefix><sha256>`` in one bucket.

For several replicas: every instance sees the same bucket, and the Blob table in
the shared database says what is stored.  Large uploads go up in parts
(boto3's managed transfer); downloads stream through the service or, with
``NGSHARE_S3_PRESIGN_DOWNLOADS``, redirect to a short-lived presigned URL so the
bytes bypass the service (the clients must then be able to reach the endpoint).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from urllib.parse import quote

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError
from flask import Response, redirect

from ngshare_gql.config import Settings
from ngshare_gql.storage.blobs import CHUNK, SHA256_RE, BlobStore
from ngshare_gql.storage.staging import StagedFile

NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


class S3BlobStore(BlobStore):
    """Bytes in an S3 (or S3-compatible) bucket."""

    name = "s3"

    def __init__(self, settings: Settings) -> None:
        if settings.s3_addressing_style not in {"auto", "path", "virtual"}:
            raise ValueError(
                f"NGSHARE_S3_ADDRESSING_STYLE={settings.s3_addressing_style!r}: "
                "use 'auto', 'path' or 'virtual'"
            )
        self.bucket = settings.s3_bucket
        self.prefix = settings.s3_prefix
        self.presign = settings.s3_presign_downloads
        self.presign_expiry = settings.s3_presign_expiry
        # boto3 clients are thread-safe; sessions are not, so one client per process.
        session = boto3.session.Session(
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=settings.s3_secret_access_key,
            region_name=settings.s3_region,
        )
        self.client = session.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": settings.s3_addressing_style},
                retries={"max_attempts": 5, "mode": "standard"},
                max_pool_connections=32,
            ),
        )
        self.transfer = TransferConfig(
            multipart_threshold=settings.s3_multipart_threshold,
            multipart_chunksize=max(settings.s3_multipart_threshold, 5 * 1024 * 1024),  # S3 minimum
            max_concurrency=4,
        )

    def key(self, sha256: str) -> str:
        if not SHA256_RE.match(sha256):
            raise ValueError("not a sha256 hex digest")
        return self.prefix + sha256

    def _has_bytes(self, sha256: str, size: int) -> bool:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key(sha256))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in NOT_FOUND:
                return False
            raise
        return head["ContentLength"] == size

    def _write(self, staged: StagedFile) -> None:
        self.client.upload_file(
            staged.path,
            self.bucket,
            self.key(staged.sha256),
            ExtraArgs={"ContentType": "application/octet-stream"},
            Config=self.transfer,
        )

    def response(self, sha256: str, size: int, filename: str) -> Response:
        key = self.key(sha256)
        if self.presign:
            url = self.client.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": key,
                    "ResponseContentType": "application/octet-stream",
                    "ResponseContentDisposition": f"attachment; filename*=UTF-8''{quote(filename)}",
                },
                ExpiresIn=self.presign_expiry,
            )
            return redirect(url, code=302)
        # Opened before the response starts, so a missing object is an error, not a
        # truncated download.
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        response = Response(_stream(body), mimetype="application/octet-stream")
        response.content_length = size
        return response

    def iter_bytes(self, sha256: str) -> Iterator[bytes]:
        body = self.client.get_object(Bucket=self.bucket, Key=self.key(sha256))["Body"]
        return _stream(body)

    def delete_bytes(self, hashes: list[str]) -> None:
        for start in range(0, len(hashes), 1000):  # the API's limit per request
            batch = [{"Key": self.key(h)} for h in hashes[start : start + 1000]]
            result = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
            )
            if result.get("Errors"):
                first = result["Errors"][0]
                raise RuntimeError(
                    f"S3 refused to delete {len(result['Errors'])} objects, e.g. "
                    f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )

    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)

    def iter_stored(self) -> Iterator[tuple[str, int, datetime]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for obj in page.get("Contents", []):
                sha256 = obj["Key"][len(self.prefix) :]
                if SHA256_RE.match(sha256):
                    modified = obj["LastModified"].astimezone(timezone.utc).replace(tzinfo=None)
                    yield sha256, obj["Size"], modified


def _stream(body) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK)
    finally:
        body.close()
