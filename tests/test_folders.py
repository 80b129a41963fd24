"""Empty folders: a release or submission carries them besides its files, as nbgrader's
exchange copies them; they are checked like file paths."""

import pytest

from tests.conftest import RELEASE, SUBMIT, file_inputs, release, submit

FETCH = 'mutation { fetchAssignment(courseId: "c1", name: "ps1") { folders } }'
COLLECT = 'mutation { collectSubmissions(courseId: "c1", assignment: "ps1") { folders } }'
NOTEBOOK = {"a.ipynb": b"{}"}


def test_folders_travel_with_a_release_and_a_submission(as_user, course):
    ins, s1 = as_user("ins"), as_user("s1")
    released = release(ins, "c1", "ps1", NOTEBOOK, folders=["output", "data/raw"])
    assert released["folders"] == ["output", "data/raw"]
    assert s1(FETCH)["fetchAssignment"]["folders"] == ["output", "data/raw"]
    submitted = submit(s1, "c1", "ps1", {"a.ipynb": b"mine"}, folders=["scratch"])
    assert submitted["folders"] == ["scratch"]
    assert ins(COLLECT)["collectSubmissions"] == [{"folders": ["scratch"]}]
    # Replacing the release replaces its folders; left out, there are none.
    assert release(ins, "c1", "ps1", NOTEBOOK, force=True, folders=["results"])["folders"] == [
        "results"
    ]
    assert release(ins, "c1", "ps1", NOTEBOOK, force=True)["folders"] == []
    withdrawn = ins(
        'mutation { unreleaseAssignment(courseId: "c1", name: "ps1") { folders } }'
    )
    assert withdrawn["unreleaseAssignment"]["folders"] == []
    # Clearing a submission from the inbound clears its folders with its files.
    ins('mutation { removeSubmissions(courseId: "c1", assignment: "ps1") }')
    listed = ins(
        """{ course(id: "c1") { assignment(name: "ps1") {
          submissions(filter: {includeRemoved: true}) { folders } } } }"""
    )
    assert listed["course"]["assignment"]["submissions"] == [{"folders": []}]


@pytest.mark.parametrize(
    "folders",
    [
        ["../escape"],
        ["/etc"],
        ["a/../../b"],
        ["a\\b"],
        [""],
        ["a//b"],
        ["trailing/"],
        ["C:/x"],
        ["line\nbreak"],
        ["same", "same"],
        ["a.ipynb"],  # where a file is
        ["a.ipynb/inside"],  # inside a file
        ["caf\u00e9", "cafe\u0301"],  # the same name, normalised
        ["evil\u202egpj"],
        ["x" * 2000],
        [f"f{i}" for i in range(1001)],
    ],
)
def test_bad_folders_are_refused_and_change_nothing(as_user, course, folders):
    ins, s1 = as_user("ins"), as_user("s1")
    release(ins, "c1", "ps1", NOTEBOOK, folders=["kept"])
    inputs, _ = file_inputs(NOTEBOOK, send=False)
    again = {"c": "c1", "n": "ps1", "files": inputs, "force": True, "due": None}
    assert ins.error(RELEASE, {**again, "folders": folders}) == "BAD_USER_INPUT"
    assert s1(FETCH)["fetchAssignment"]["folders"] == ["kept"]
    inputs, uploads = file_inputs({"a.ipynb": b"mine"})
    handing_in = {"c": "c1", "a": "ps1", "files": inputs, "ts": None, "folders": folders}
    assert s1.error(SUBMIT, handing_in, uploads) == "BAD_USER_INPUT"


def test_files_inside_a_file_are_refused(as_user, course):
    """File "a" and file "a/b" cannot both be written anywhere they are fetched to."""
    inputs, uploads = file_inputs({"a": b"1", "a/b": b"2"})
    variables = {"c": "c1", "n": "ps1", "files": inputs, "force": False, "due": None}
    assert as_user("ins").error(RELEASE, variables, uploads) == "BAD_USER_INPUT"
