"""Downloads from the filesystem store reach the WSGI server as its own file wrapper.

gunicorn sends a ``wsgi.file_wrapper`` response with ``sendfile()``; any other
iterable it copies through Python 8 KiB at a time.  The metrics middleware must
hand the wrapper through and still count the bytes.
"""

from __future__ import annotations

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wsgi import FileWrapper

from ngshare_gql.config import Settings
from ngshare_gql.metrics import BODY_BYTES
from tests.conftest import release


@pytest.fixture
def settings(db_url, tmp_path) -> Settings:
    return Settings(
        database_url=db_url, auth="dev", admins=("admin",),
        blob_store="filesystem", blob_dir=str(tmp_path / "blobs"),
    )


def test_download_is_passed_through_as_the_servers_file_wrapper(app, as_user, course):
    content = b"0123456789" * 100_000
    (f,) = release(as_user("ins"), "c1", "ps1", {"big.bin": content})["files"]
    environ = EnvironBuilder(path=f["url"], headers={"Authorization": "token s1"}).get_environ()
    environ["wsgi.file_wrapper"] = FileWrapper
    statuses = []
    before = BODY_BYTES.labels("out")._value.get()
    body = app.wsgi_app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    assert isinstance(body, FileWrapper)
    assert statuses == ["200 OK"]
    assert b"".join(body) == content
    body.close()
    assert BODY_BYTES.labels("out")._value.get() - before == len(content)


def test_other_responses_are_still_counted(app, as_user, course):
    environ = EnvironBuilder(path="/healthz").get_environ()
    environ["wsgi.file_wrapper"] = FileWrapper
    before = BODY_BYTES.labels("out")._value.get()
    body = app.wsgi_app(environ, lambda *a: None)
    assert not isinstance(body, FileWrapper)
    sent = b"".join(body)
    body.close()
    assert BODY_BYTES.labels("out")._value.get() - before == len(sent) > 0
