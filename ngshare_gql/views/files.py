"""Streamed downloads of stored files, authorized like the GraphQL field that listed them."""

from __future__ import annotations

import posixpath
from urllib.parse import quote

from flask import Blueprint, Response, current_app, request

from ngshare_gql.auth import authenticate
from ngshare_gql.domain.files import readable_file
from ngshare_gql.roles import caller_for

bp = Blueprint("files", __name__)


# Ids beyond a 64-bit integer are no file of ours (and overflow the database driver).
@bp.get("/files/<int(max=9223372036854775807):file_id>")
def download(file_id: int) -> Response:
    caller = caller_for(authenticate(request))
    file = readable_file(caller, file_id)
    etag = f'"{file.sha256}"'
    if etag in request.headers.get("If-None-Match", ""):
        return Response(status=304, headers={"ETag": etag})
    response = current_app.extensions["ngshare"].blobs.response(
        file.sha256, file.size, posixpath.basename(file.path)
    )
    response.headers["ETag"] = etag
    response.headers["X-Content-SHA256"] = file.sha256
    response.headers["Content-Disposition"] = (
        f"attachment; filename*=UTF-8''{quote(posixpath.basename(file.path))}"
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response
