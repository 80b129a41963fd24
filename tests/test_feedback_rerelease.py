"""Releasing unchanged feedback again, without resending its bytes (what
``nbgrader release_feedback`` does on a second run), replaces it."""

from tests.conftest import release, sha, submit

RELEASE_FEEDBACK = """mutation($f: [FeedbackInput!]!) {
  releaseFeedback(courseId: "c1", assignment: "ps1", feedback: $f) { student files { sha256 } } }"""


def test_rerelease_reuses_the_replaced_content(as_user, course):
    ins, s1 = as_user("ins"), as_user("s1")
    release(ins, "c1", "ps1", {"a.ipynb": b"{}"})
    submit(s1, "c1", "ps1", {"a.ipynb": b"1"}, ts="t1")
    html = b"<p>well done</p>"
    spec = {
        "student": "s1",
        "notebook": "a",
        "timestamp": "t1",
        "files": [{"path": "a.html", "sha256": sha(html), "size": len(html)}],
    }
    ins(RELEASE_FEEDBACK, {"f": [spec]}, {"f.0.files.0.content": html})
    missing = ins(
        'query($h: [String!]!) { missingContent(courseId: "c1", sha256: $h) }', {"h": [sha(html)]}
    )
    assert missing["missingContent"] == []
    again = ins(RELEASE_FEEDBACK, {"f": [spec]})["releaseFeedback"]
    assert again[0]["files"] == [{"sha256": sha(html)}]
    got = s1('mutation { fetchFeedback(courseId: "c1", assignment: "ps1") { files { sha256 } } }')
    assert got["fetchFeedback"] == [{"files": [{"sha256": sha(html)}]}]
