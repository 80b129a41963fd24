"""A course's assignments share one statement for their submissions (and one for their
feedback): each must still get exactly what asking for it alone gives, whatever the
filter and whoever asks."""

from __future__ import annotations

import itertools

import pytest

from tests.conftest import file_inputs, release, submit

SUBMISSIONS = (
    "$f: SubmissionFilter",
    "submissions(filter: $f) { id student timestamp files { path } }",
)
FEEDBACK = ("$s: String", "feedback(student: $s) { student notebook timestamp }")


def _query(listing: tuple[str, str], assignment: str | None = None) -> str:
    """``listing`` for all the course's assignments, or for the one named."""
    declared, field = listing
    where = f'assignment(name: "{assignment}")' if assignment else "assignments"
    return f'query({declared}) {{ course(id: "c1") {{ {where} {{ name {field} }} }} }}'


NAMES = ("past-due", "no-due", "future-due", "nobody")
FILTERS = [
    {"student": student, "latestOnly": latest, "uncollected": uncollected, "beforeDue": due}
    for student, latest, uncollected, due in itertools.product(
        (None, "s1"), (False, True), (False, True), (False, True)
    )
]


@pytest.fixture
def history(as_user, course):
    """Four assignments with different due times and submission histories, some
    collected, some with feedback."""
    ins = as_user("ins")
    release(ins, "c1", "past-due", {"a.ipynb": b"{}"}, due="2000-01-01T00:00:00Z")
    release(ins, "c1", "no-due", {"a.ipynb": b"{}"})
    release(ins, "c1", "future-due", {"a.ipynb": b"{}"}, due="2999-01-01T00:00:00Z")
    release(ins, "c1", "nobody", {"a.ipynb": b"{}"})
    for student, name, ts in [
        ("s1", "past-due", "t1"), ("s1", "past-due", "t2"), ("s2", "past-due", "t1"),
        ("s1", "no-due", "t1"), ("s1", "future-due", "t1"), ("s2", "future-due", "t1"),
    ]:  # fmt: skip
        submit(as_user(student), "c1", name, {"a.ipynb": f"{student}{name}{ts}".encode()}, ts=ts)
    for name in ("no-due", "future-due"):
        ins(f'mutation {{ collectSubmissions(courseId: "c1", assignment: "{name}") {{ id }} }}')
    submit(as_user("s2"), "c1", "future-due", {"a.ipynb": b"again"}, ts="t2")  # uncollected
    html = b"<html/>"
    inputs, _ = file_inputs({"a.html": html})
    for name, students in (("past-due", ["s1", "s2"]), ("future-due", ["s2"])):
        ins(
            """mutation($a: String!, $f: [FeedbackInput!]!) { releaseFeedback(courseId: "c1",
               assignment: $a, feedback: $f) { id } }""",
            {"a": name, "f": [{"student": s, "notebook": "a", "files": inputs} for s in students]},
            {"f.0.files.0.content": html},
        )


def _together_and_alone(gql, listing: tuple[str, str], variables: dict):
    """Each assignment's listing from the shared statement, and from asking for it
    alone; an error code in place of a listing when the operation is refused."""
    response = gql.raw(_query(listing), variables).get_json()
    if response.get("errors"):
        shared = response["errors"][0]["extensions"]["code"]
    else:
        shared = {a["name"]: a for a in response["data"]["course"]["assignments"]}
    one_by_one = {}
    for name in NAMES:
        response = gql.raw(_query(listing, name), variables).get_json()
        if response.get("errors"):
            one_by_one = response["errors"][0]["extensions"]["code"]
            break
        one_by_one[name] = response["data"]["course"]["assignment"]
    return shared, one_by_one


@pytest.mark.parametrize("user", ["ins", "s1", "s2"])
def test_submissions_listed_together_match_each_listed_alone(history, as_user, user):
    seen = set()
    for which in FILTERS:
        shared, one_by_one = _together_and_alone(as_user(user), SUBMISSIONS, {"f": which})
        assert shared == one_by_one, which
        if user == "s2" and which["student"] == "s1":  # refused, together as alone
            assert shared == "FORBIDDEN"
            continue
        assert isinstance(shared, dict), (which, shared)
        seen |= {(n, s["student"]) for n, a in shared.items() for s in a["submissions"]}
    expected_students = {"ins": {"s1", "s2"}, "s1": {"s1"}, "s2": {"s2"}}[user]
    assert {s for _, s in seen} == expected_students  # nobody sees another's
    assert not any(n == "nobody" for n, _ in seen)


def test_the_filters_apply_to_each_assignment_on_its_own(history, as_user):
    def listed(**which):
        data = as_user("ins")(_query(SUBMISSIONS), {"f": which})
        return {
            a["name"]: sorted((s["student"], s["timestamp"]) for s in a["submissions"])
            for a in data["course"]["assignments"]
        }

    assert listed() == {
        "past-due": [("s1", "t1"), ("s1", "t2"), ("s2", "t1")],
        "no-due": [("s1", "t1")],
        "future-due": [("s1", "t1"), ("s2", "t1"), ("s2", "t2")],
        "nobody": [],
    }
    # each assignment's own due time: every past-due submission was late
    assert listed(beforeDue=True) == {
        "past-due": [], "no-due": [("s1", "t1")],
        "future-due": [("s1", "t1"), ("s2", "t1"), ("s2", "t2")], "nobody": [],
    }  # fmt: skip
    assert listed(latestOnly=True) == {
        "past-due": [("s1", "t2"), ("s2", "t1")], "no-due": [("s1", "t1")],
        "future-due": [("s1", "t1"), ("s2", "t2")], "nobody": [],
    }  # fmt: skip
    assert listed(uncollected=True) == {
        "past-due": [("s1", "t1"), ("s1", "t2"), ("s2", "t1")], "no-due": [],
        "future-due": [("s2", "t2")], "nobody": [],
    }  # fmt: skip


def test_a_students_listing_in_order(history, as_user):
    """Unsorted: each assignment's own submissions in the order they were received,
    filters combined, from the shared statement."""

    def listed(**which):
        data = as_user("s1")(_query(SUBMISSIONS), {"f": which})
        return {
            a["name"]: [s["timestamp"] for s in a["submissions"]]
            for a in data["course"]["assignments"]
        }

    assert listed() == {
        "past-due": ["t1", "t2"], "no-due": ["t1"], "future-due": ["t1"], "nobody": [],
    }  # fmt: skip
    assert listed(latestOnly=True, beforeDue=True) == {
        "past-due": [], "no-due": ["t1"], "future-due": ["t1"], "nobody": [],
    }  # fmt: skip
    assert listed(latestOnly=True, uncollected=True) == {
        "past-due": ["t2"], "no-due": [], "future-due": [], "nobody": [],
    }  # fmt: skip


def test_each_course_listed_with_the_callers_role_in_it(history, as_user):
    """An instructor of c1 who is a student in d1: all of c1's submissions, only their
    own in d1, from one listing of all their courses."""
    add = """mutation($m: [MemberInput!]!) {
        addMembers(courseId: "d1", role: STUDENT, members: $m) { user } }"""
    as_user("ins2")(add, {"m": [{"user": "ins"}]})
    for name in ("d-ps1", "d-ps2"):
        release(as_user("ins2"), "d1", name, {"a.ipynb": b"{}"})
        for student in ("t1", "ins"):
            submit(as_user(student), "d1", name, {"a.ipynb": student.encode()})
    data = as_user("ins")(
        "{ courses { id assignments { name submissions { student } feedback { student } } } }"
    )
    seen = {
        course["id"]: {
            a["name"]: sorted(s["student"] for s in a["submissions"]) for a in course["assignments"]
        }
        for course in data["courses"]
    }
    assert seen["d1"] == {"d-ps1": ["ins"], "d-ps2": ["ins"]}
    assert seen["c1"]["past-due"] == ["s1", "s1", "s2"]
    assert seen["c1"]["future-due"] == ["s1", "s2", "s2"]


def test_two_filters_in_one_query_are_not_confused(history, as_user):
    """The shared statement is remembered per filter: aliases with different filters
    each get their own."""
    data = as_user("ins")(
        """{ course(id: "c1") { assignments { name
             all: submissions { timestamp }
             latest: submissions(filter: {latestOnly: true}) { timestamp }
             mine: feedback(student: "s1") { notebook }
             everyones: feedback { notebook } } } }"""
    )
    by_name = {a["name"]: a for a in data["course"]["assignments"]}
    assert len(by_name["past-due"]["all"]) == 3 and len(by_name["past-due"]["latest"]) == 2
    assert len(by_name["past-due"]["mine"]) == 1 and len(by_name["past-due"]["everyones"]) == 2
    assert len(by_name["future-due"]["mine"]) == 0 and len(by_name["future-due"]["everyones"]) == 1


@pytest.mark.parametrize("user", ["ins", "s1", "s2"])
@pytest.mark.parametrize("student", [None, "s1", "s2"])
def test_feedback_listed_together_matches_each_listed_alone(history, as_user, user, student):
    shared, one_by_one = _together_and_alone(as_user(user), FEEDBACK, {"s": student})
    assert shared == one_by_one
    if user != "ins" and student not in (None, user):
        assert shared == "FORBIDDEN"
    else:
        assert isinstance(shared, dict), shared
        students = {f["student"] for a in shared.values() for f in a["feedback"]}
        assert students <= ({user} if user != "ins" else {"s1", "s2"})
        assert sum(len(a["feedback"]) for a in shared.values()) == (
            {None: 3, "s1": 1, "s2": 2}[student] if user == "ins" else {"s1": 1, "s2": 2}[user]
        )
