"""The whole exchange cycle over GraphQL through the Flask test client."""

from tests.conftest import release, sha, submit


def test_release_fetch_submit_collect_feedback(app, as_user, course):
    ins, s1 = as_user("ins"), as_user("s1")
    files = {"ps1.ipynb": b'{"cells": []}', "data/a.csv": b"x,y\n1,2\n", "README.md": b"# hi"}
    rel = release(ins, "c1", "ps1", files)
    assert rel["released"] is True
    assert sorted(f["path"] for f in rel["files"]) == sorted(files)

    listed = s1('{ course(id: "c1") { assignments { name files { path sha256 url } } } }')
    (assignment,) = listed["course"]["assignments"]
    client = app.test_client()
    for f in assignment["files"]:
        response = client.get(f["url"], headers={"Authorization": "token s1"})
        assert response.status_code == 200
        assert sha(response.data) == f["sha256"] == response.headers["ETag"].strip('"')

    sub = submit(s1, "c1", "ps1", {"ps1.ipynb": b'{"cells": [1]}'}, ts="2026-01-01 10:00:00 UTC")
    assert sub["student"] == "s1" and sub["timestamp"] == "2026-01-01 10:00:00 UTC"

    collected = ins(
        'mutation { collectSubmissions(courseId: "c1", assignment: "ps1") '
        "{ student timestamp collectedAt files { path sha256 } } }"
    )["collectSubmissions"]
    assert [c["student"] for c in collected] == ["s1"]
    assert collected[0]["collectedAt"]

    html = b"<html>good</html>"
    fb = ins(
        """mutation($f: [FeedbackInput!]!) { releaseFeedback(courseId: "c1", assignment: "ps1",
        feedback: $f) { student notebook timestamp files { path } } }""",
        {
            "f": [
                {
                    "student": "s1",
                    "notebook": "ps1",
                    "timestamp": "2026-01-01 10:00:00 UTC",
                    "files": [{"path": "ps1.html", "sha256": sha(html), "size": len(html)}],
                }
            ]
        },
        {"f.0.files.0.content": html},
    )["releaseFeedback"]
    assert fb[0]["student"] == "s1"

    got = s1(
        'mutation { fetchFeedback(courseId: "c1", assignment: "ps1") '
        "{ notebook timestamp files { url sha256 } } }"
    )
    (item,) = got["fetchFeedback"]
    response = client.get(item["files"][0]["url"], headers={"Authorization": "token s1"})
    assert response.data == html
    # Another student sees nothing of it.
    assert (
        as_user("s2")('mutation { fetchFeedback(courseId: "c1", assignment: "ps1") { notebook } }')[
            "fetchFeedback"
        ]
        == []
    )
    assert (
        client.get(item["files"][0]["url"], headers={"Authorization": "token s2"}).status_code
        == 404
    )
