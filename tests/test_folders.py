"""Empty folders: a release or submission carries them besides its files, as nbgrader's
exchange copies them; they are checked like file paths."""

import pytest

from tests.conftest import file_inputs

RELEASE = """mutation($n: String!, $files: [FileInput!]!, $folders: [String!], $force: Boolean!) {
  releaseAssignment(courseId: "c1", name: $n, files: $files, folders: $folders, force: $force) {
    folders } }"""
SUBMIT = """mutation($files: [FileInput!]!, $folders: [String!]) {
  submitAssignment(courseId: "c1", assignment: "ps1", files: $files, folders: $folders) {
    folders } }"""
FETCH = 'mutation { fetchAssignment(courseId: "c1", name: "ps1") { folders } }'
COLLECT = 'mutation { collectSubmissions(courseId: "c1", assignment: "ps1") { folders } }'


def release(ins, folders, name="ps1", force=False, files=None):
    inputs, uploads = file_inputs(files or {"a.ipynb": b"{}"})
    variables = {"n": name, "files": inputs, "folders": folders, "force": force}
    return ins(RELEASE, variables, uploads)["releaseAssignment"]["folders"]


def test_folders_travel_with_a_release_and_a_submission(as_user, course):
    ins, s1 = as_user("ins"), as_user("s1")
    assert release(ins, ["output", "data/raw"]) == ["output", "data/raw"]
    assert s1(FETCH)["fetchAssignment"]["folders"] == ["output", "data/raw"]
    inputs, uploads = file_inputs({"a.ipynb": b"mine"})
    submitted = s1(SUBMIT, {"files": inputs, "folders": ["scratch"]}, uploads)
    assert submitted["submitAssignment"]["folders"] == ["scratch"]
    assert ins(COLLECT)["collectSubmissions"] == [{"folders": ["scratch"]}]
    # Replacing the release replaces its folders; left out, there are none.
    assert release(ins, ["results"], force=True) == ["results"]
    assert release(ins, None, force=True) == []
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
    ins = as_user("ins")
    release(ins, ["kept"])
    assert ins.error(
        RELEASE,
        {"n": "ps1", "files": file_inputs({"a.ipynb": b"{}"}, send=False)[0], "folders": folders,
         "force": True},
    ) == "BAD_USER_INPUT"
    assert as_user("s1")(FETCH)["fetchAssignment"]["folders"] == ["kept"]
    inputs, uploads = file_inputs({"a.ipynb": b"mine"})
    assert as_user("s1").error(SUBMIT, {"files": inputs, "folders": folders}, uploads) == (
        "BAD_USER_INPUT"
    )


def test_files_inside_a_file_are_refused(as_user, course):
    """File "a" and file "a/b" cannot both be written anywhere they are fetched to."""
    inputs, uploads = file_inputs({"a": b"1", "a/b": b"2"})
    variables = {"n": "ps1", "files": inputs, "folders": None, "force": False}
    assert as_user("ins").error(RELEASE, variables, uploads) == "BAD_USER_INPUT"
