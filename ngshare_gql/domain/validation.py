"""Checks on names and paths that come from clients, before they touch anything."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from ngshare_gql.errors import BadInput

MAX_PATH = 1024
MAX_SEGMENT = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")
# Bidirectional overrides make "evil\u202egpj.exe" display as "evilexe.jpg".
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


def _invisible(value: str) -> bool:
    """Control or format characters (bidi overrides, zero-width), which make two
    different names look the same."""
    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value)


def check_name(value: str, what: str, max_length: int = 128) -> str:
    """A course id, assignment, user or notebook name: one safe path segment."""
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{what} must not be empty")
    if len(value) > max_length:
        raise BadInput(f"{what} is longer than {max_length} characters")
    if _invisible(value) or "/" in value or "\\" in value or value in (".", ".."):
        raise BadInput(f"{what} {value[:80]!r} contains characters that are not allowed")
    if value != value.strip():
        raise BadInput(f"{what} {value!r} has leading or trailing spaces")
    return value


def check_path(path: str, what: str = "file path") -> str:
    """A relative file (or folder) path inside a release, submission or feedback."""
    if not isinstance(path, str) or not path:
        raise BadInput(f"a {what} must not be empty")
    shown = repr(path[:80])
    if len(path) > MAX_PATH:
        raise BadInput(f"{what} {shown}... is longer than {MAX_PATH} characters")
    if _CONTROL.search(path) or _BIDI.search(path):
        raise BadInput(f"{what} {shown} contains control characters")
    if "\\" in path:
        raise BadInput(f"{what} {shown} contains a backslash; use '/'")
    if path.startswith("/") or _DRIVE.match(path):
        raise BadInput(f"{what} {shown} must be relative")
    for segment in path.split("/"):
        if segment.strip() in ("", ".", ".."):
            raise BadInput(f"{what} {shown} has an empty, blank, '.' or '..' component")
        if len(segment) > MAX_SEGMENT:
            raise BadInput(f"{what} {shown} has a component longer than {MAX_SEGMENT}")
    return path


def check_layout(files: Sequence[str], folders: Sequence[str] = ()) -> None:
    """Paths that can all exist at once: none twice, Unicode normalisation included, and
    none inside a file (``a`` and ``a/b`` cannot both be written)."""
    seen: set[str] = set()
    for path in [*files, *folders]:
        key = unicodedata.normalize("NFC", path)
        if key in seen:
            raise BadInput(f"path {path[:80]!r} appears more than once")
        seen.add(key)
    file_keys = {unicodedata.normalize("NFC", path) for path in files}
    for path in [*files, *folders]:
        parts = unicodedata.normalize("NFC", path).split("/")
        for depth in range(1, len(parts)):
            above = "/".join(parts[:depth])
            if above in file_keys:
                raise BadInput(f"{path[:80]!r} is inside {above[:80]!r}, which is a file")


MAX_FOLDERS = 1_000


def check_folders(folders: Sequence[str], file_paths: Sequence[str]) -> list[str]:
    """Empty folders to carry besides the files: relative paths like a file's, at most
    :data:`MAX_FOLDERS`, that can exist beside the files."""
    if len(folders) > MAX_FOLDERS:
        raise BadInput(f"more than {MAX_FOLDERS} folders")
    for folder in folders:
        check_path(folder, "folder path")
    check_layout(file_paths, folders)
    return list(folders)


def check_sha256(value: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{64}", value):
        raise BadInput("sha256 must be 64 lowercase hexadecimal digits")
    return value
