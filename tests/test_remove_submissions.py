"""removeSubmissions: what `nbgrader list --inbound --remove` needs from the service."""

from tests.conftest import RELEASE_FEEDBACK, release, release_feedback, sha, submit

REMOVE = """mutation($c: String!, $a: String!, $s: String, $t: String) {
  removeSubmissions(courseId: $c, assignment: $a, student: $s, timestamp: $t) }"""
SUBS = '{ course(id: "c1") { assignment(name: "ps1") { submissions { student timestamp } } } }'
FETCH = """mutation { fetchFeedback(courseId: "c1", assignment: "ps1") {
  timestamp files { sha256 url } } }"""


def test_remove_one_then_all(as_user, course):
    ins, s1, s2 = as_user("ins"), as_user("s1"), as_user("s2")
    release(ins, "c1", "ps1", {"a.ipynb": b"{}"})
    submit(s1, "c1", "ps1", {"a.ipynb": b"1"}, ts="t1")
    submit(s1, "c1", "ps1", {"a.ipynb": b"2"}, ts="t2")
    submit(s2, "c1", "ps1", {"a.ipynb": b"3"}, ts="t1")

    assert ins(REMOVE, {"c": "c1", "a": "ps1", "s": "s1", "t": "t1"})["removeSubmissions"] == 1
    left = ins(SUBS)["course"]["assignment"]["submissions"]
    assert [(s["student"], s["timestamp"]) for s in left] == [("s1", "t2"), ("s2", "t1")]

    assert ins(REMOVE, {"c": "c1", "a": "ps1"})["removeSubmissions"] == 2
    assert ins(SUBS)["course"]["assignment"]["submissions"] == []
    events = ins('{ events(courseId: "c1", action: "submission.removed") { subject } }')
    assert [e["subject"] for e in events["events"]] == ["2 submissions", "1 submissions of s1"]


def test_students_and_outsiders_cannot_remove(as_user, course):
    ins, s1 = as_user("ins"), as_user("s1")
    release(ins, "c1", "ps1", {"a.ipynb": b"{}"})
    submit(s1, "c1", "ps1", {"a.ipynb": b"1"}, ts="t1")
    assert s1.error(REMOVE, {"c": "c1", "a": "ps1", "s": "s1"}) == "FORBIDDEN"
    assert as_user("ins2").error(REMOVE, {"c": "c1", "a": "ps1"}) == "FORBIDDEN"
    assert len(ins(SUBS)["course"]["assignment"]["submissions"]) == 1


def test_removing_keeps_feedback_and_what_it_is_for(as_user, course):
    """As with nbgrader's exchange, whose feedback does not live in the inbound: feedback
    the student has not fetched yet survives the clean-up, and more can be released to
    the removed submission; the submission itself is gone from lists, collection and
    downloads."""
    ins, s1 = as_user("ins"), as_user("s1")
    release(ins, "c1", "ps1", {"a.ipynb": b"{}"})
    handed_in = submit(s1, "c1", "ps1", {"a.ipynb": b"mine"}, ts="t1")
    (submitted_url,) = [f["url"] for f in handed_in["files"]]
    release_feedback(ins, "c1", "ps1", "s1", "t1", b"<p>pending</p>")

    assert ins(REMOVE, {"c": "c1", "a": "ps1"})["removeSubmissions"] == 1
    for who in (ins, s1):
        assert who.client.get(submitted_url, headers=who.headers).status_code == 404
    (pending,) = s1(FETCH)["fetchFeedback"]
    assert pending["timestamp"] == "t1"
    assert [f["sha256"] for f in pending["files"]] == [sha(b"<p>pending</p>")]
    got = s1.client.get(pending["files"][0]["url"], headers=s1.headers)
    assert got.status_code == 200 and got.data == b"<p>pending</p>"

    released = release_feedback(ins, "c1", "ps1", "s1", "t1", b"<p>revised</p>")
    assert released == [{"student": "s1", "timestamp": "t1"}]
    (revised,) = s1(FETCH)["fetchFeedback"]
    assert [f["sha256"] for f in revised["files"]] == [sha(b"<p>revised</p>")]
    # Withdrawn as well: the student still sees the assignment they submitted to, and
    # its feedback.
    ins('mutation { unreleaseAssignment(courseId: "c1", name: "ps1") { released } }')
    (still,) = s1(FETCH)["fetchFeedback"]
    assert [f["sha256"] for f in still["files"]] == [sha(b"<p>revised</p>")]
    release(ins, "c1", "ps1", {"a.ipynb": b"{}"})

    assert ins(SUBS)["course"]["assignment"]["submissions"] == []
    collect = 'mutation { collectSubmissions(courseId: "c1", assignment: "ps1") { student } }'
    assert ins(collect)["collectSubmissions"] == []
    # Asked for, the record is listed, with when it was removed and nothing else left;
    # collecting never takes it.
    listed = ins(
        """{ course(id: "c1") { assignment(name: "ps1") {
          submissions(filter: {includeRemoved: true}) { timestamp removedAt files { path } }
        } } }"""
    )["course"]["assignment"]["submissions"]
    assert [(s["timestamp"], s["files"]) for s in listed] == [("t1", [])]
    assert listed[0]["removedAt"] is not None
    everything = collect.replace('"ps1")', '"ps1", filter: {includeRemoved: true})')
    assert ins(everything)["collectSubmissions"] == []
    assert ins(REMOVE, {"c": "c1", "a": "ps1"})["removeSubmissions"] == 0
    # A later submission is listed as usual; feedback for a time never submitted is refused.
    submit(s1, "c1", "ps1", {"a.ipynb": b"again"}, ts="t2")
    left = ins(SUBS)["course"]["assignment"]["submissions"]
    assert [(s["student"], s["timestamp"]) for s in left] == [("s1", "t2")]
    never = {"student": "s1", "notebook": "a", "timestamp": "t9", "files": []}
    assert ins.error(RELEASE_FEEDBACK, {"c": "c1", "a": "ps1", "f": [never]}) == "NOT_FOUND"
