"""removeSubmissions: what `nbgrader list --inbound --remove` needs from the service."""

from tests.conftest import release, submit

REMOVE = """mutation($c: String!, $a: String!, $s: String, $t: String) {
  removeSubmissions(courseId: $c, assignment: $a, student: $s, timestamp: $t) }"""
SUBS = '{ course(id: "c1") { assignment(name: "ps1") { submissions { student timestamp } } } }'


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
