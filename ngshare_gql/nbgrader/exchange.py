"""The base of every plugin: where the service is, how to call it, and file selection.

It mirrors nbgrader's default ``Exchange`` where users can see it (its traits are
accepted so existing configs load; ignore/include/size limits select the same
files) and replaces the shared directory with GraphQL calls through
:class:`ngshare_gql.client.Client`.
"""

from __future__ import annotations

import fnmatch
import os
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any, NoReturn

from jupyter_core.paths import jupyter_data_dir
from nbgrader.exchange.abc import Exchange as ABCExchange
from nbgrader.exchange.abc import ExchangeError
from nbgrader.utils import ignore_patterns
from rapidfuzz import fuzz
from traitlets import Bool, Float, Int, Unicode, default

from ngshare_gql.client import DOWNLOAD_WORKERS, Client, ClientError, Download, LocalFile

#: Transfers at least this big are logged as they progress.
PROGRESS_THRESHOLD = 10 * 1024 * 1024

FILE = "files { path size sha256 url modifiedAt }"
# What the service says when a query of ours names what its schema lacks (a field, an
# input field, an argument): a service older than these plugins.
_UNKNOWN_TO_SERVICE = tuple(
    re.compile(pattern)
    for pattern in (
        r"Cannot query field '(?P<field>\w+)' on type '(?P<type>\w+)'",
        r"Expected value of type '(?P<type>\w+)' not to include unknown field '(?P<field>\w+)'",
        r"Unknown argument '(?P<field>\w+)' on field '(?P<type>[\w.]+)'",
    )
)
# The assignments the caller may fetch (released), or see (also those submitted to).
RELEASED = "query($c: String!) { course(id: $c) { assignments(released: true) { name } } }"
VISIBLE = "query($c: String!) { course(id: $c) { assignments { name } } }"


class Exchange(ABCExchange):
    """Talks to the ngshare-gql service with the notebook server's JupyterHub token."""

    url = Unicode(
        "",
        help=(
            "Base URL of the ngshare-gql service (ending with '/'). Defaults to "
            "$NGSHARE_URL, else http://proxy-public/services/<service_name>/."
        ),
    ).tag(config=True)

    service_name = Unicode(
        "ngshare-gql", help="The JupyterHub service name, used for the default URL."
    ).tag(config=True)

    timeout = Float(60.0, help="Seconds to wait for the service per request.").tag(config=True)

    download_workers = Int(
        DOWNLOAD_WORKERS,
        min=1,
        help="Files downloaded at once (each over a connection of its own); 1: one at a time.",
    ).tag(config=True)

    # Traits of nbgrader's default exchange, accepted so existing configs load.
    root = Unicode(
        help="Unused by this exchange (files live in the service); accepted for old configs. "
        "Defaults to the service's URL, which the formgrader names when it cannot reach it.",
    ).tag(config=True)

    cache = Unicode(
        "",
        help="Local cache for nbgrader submit and list; defaults to "
        "$JUPYTER_DATA_DIR/nbgrader_cache",
    ).tag(config=True)

    path_includes_course = Bool(
        False,
        help="Whether fetched and submitted assignments live under ./<course>/<assignment>.",
    ).tag(config=True)

    @default("root")
    def _root_default(self) -> str:
        return self.service_url

    @default("cache")
    def _cache_default(self) -> str:
        return os.path.join(jupyter_data_dir(), "nbgrader_cache")

    _client: Client | None = None
    _me: str | None = None
    # The config section nbgrader called this class by before 0.6, still read (as its
    # default exchange does) with a warning.
    outdated_section: str | None = None

    def _load_config(self, cfg, **kwargs) -> None:
        old, new = self.outdated_section, type(self).__name__
        if old and old in cfg:
            self.log.warning(
                "Use %s in config, not %s. Outdated config:\n%s",
                new,
                old,
                "\n".join(f"{old}.{key} = {value!r}" for key, value in cfg[old].items()),
            )
            cfg[new].merge(cfg[old])
            del cfg[old]
        super()._load_config(cfg, **kwargs)

    # --- the service ---------------------------------------------------------------
    @property
    def service_url(self) -> str:
        url = (
            self.url
            or os.environ.get("NGSHARE_URL")
            or (f"http://proxy-public/services/{self.service_name}/")
        )
        return url if url.endswith("/") else url + "/"

    @property
    def client(self) -> Client:
        if self._client is None:
            token = os.environ.get("JUPYTERHUB_API_TOKEN")
            if not token:
                self.fail(
                    "JUPYTERHUB_API_TOKEN is not set: the exchange service "
                    f"{self.service_url} needs the notebook server's JupyterHub token"
                )
            self._client = Client(self.service_url, token, timeout=self.timeout)
        return self._client

    def call(self, query: str, variables: dict | None = None, uploads=None) -> dict:
        """One GraphQL operation; any failure becomes an ExchangeError with its reason."""
        try:
            if uploads:
                return self.client.execute_with_files(
                    query, variables or {}, uploads, self.progress("uploading", uploads)
                )
            return self.client.execute(query, variables)
        except ClientError as e:
            self.fail(self.explain(e))

    def explain(self, error: ClientError) -> str:
        if error.code == "UNAUTHENTICATED":
            return f"the exchange service at {self.service_url} did not accept your token: {error}"
        if error.code == "PAYLOAD_TOO_LARGE":
            return f"too large for the exchange: {error}"
        if error.code == "BAD_USER_INPUT":
            for pattern in _UNKNOWN_TO_SERVICE:
                if unknown := pattern.search(str(error)):
                    return (
                        f"the exchange service at {self.service_url} is older than this"
                        f" nbgrader plugin (it has no {unknown['type']}.{unknown['field']}):"
                        " upgrade the service, or install the plugin of the service's version"
                    )
        return str(error)

    @property
    def me(self) -> str:
        """The caller's name as the service knows it (never $USER)."""
        if self._me is None:
            self._me = self.call("{ me { name } }")["me"]["name"]
        return self._me

    def require_course(self) -> str:
        if self.coursedir.course_id == "":
            self.fail("No course id specified. Re-run with --course flag.")
        return self.coursedir.course_id

    def local_root(self, course_id: str, assignment_id: str) -> str:
        """An assignment's folder relative to ``assignment_dir``: ``<course>/<assignment>``
        with ``path_includes_course``, else ``<assignment>``."""
        if self.path_includes_course:
            return os.path.join(course_id, assignment_id)
        return assignment_id

    def assignment_not_found(
        self, src_path: str, candidates: Iterable[str], why: str = ""
    ) -> NoReturn:
        """nbgrader's "Assignment not found at", with its guess among ``candidates``
        (paths like ``src_path``): "Did you mean: …"."""
        msg = f"Assignment not found at: {src_path}" + (f" ({why})" if why else "")
        self.log.fatal(msg)
        found = list(candidates)
        if found:
            best = max(found, key=lambda path: (fuzz.ratio(src_path, path), path))
            self.log.error("Did you mean: %s", best)
        raise ExchangeError(msg)

    def found_or_guess(self, query: str, variables: dict, where: str, among: str) -> dict:
        """``query`` about the assignment being fetched.  If the service has no such
        assignment, nbgrader's "Assignment not found at" (``where`` in the exchange), with
        its guess among the assignments that ``among`` (a query) lists."""
        course, name = self.coursedir.course_id, self.coursedir.assignment_id
        try:
            return self.client.execute(query, variables)
        except ClientError as e:
            if e.code != "NOT_FOUND":
                self.fail(self.explain(e))
            reason = str(e)
        try:
            listed = self.client.execute(among, {"c": course})["course"]["assignments"]
            names = [a["name"] for a in listed]
        except ClientError:  # no guess then; the reason above is what matters
            names = []
        self.assignment_not_found(
            self.exchange_path(course, where, name),
            (self.exchange_path(course, where, other) for other in names),
            why=reason,
        )

    def exchange_path(self, *parts: str) -> str:
        """Where a thing lives in the exchange, shown in logs and list output."""
        return self.service_url + "/".join(parts)

    # --- files ---------------------------------------------------------------------
    def progress(self, verb: str, files: Any):
        """A progress callback logging every 10% of transfers above the threshold."""
        total = sum(f.size for f in files.values()) if isinstance(files, dict) else int(files)
        if total < PROGRESS_THRESHOLD:
            return None
        state = {"next": 0.1, "start": time.monotonic()}

        def report(done: int, _total: int) -> None:
            if done >= state["next"] * total or done == total:
                elapsed = max(time.monotonic() - state["start"], 1e-6)
                self.log.info(
                    "%s %.1f of %.1f MB (%d%%, %.1f MB/s)",
                    verb,
                    done / 1e6,
                    total / 1e6,
                    100 * done // total,
                    done / 1e6 / elapsed,
                )
                state["next"] = done / total + 0.1

        return report

    def check_dir_size(self, total: int) -> None:
        """nbgrader's CourseDirectory.max_dir_size (in kB), with its exception type."""
        limit = 1000 * self.coursedir.max_dir_size
        if total > limit:
            self.log.error("Directory size is too big")
            raise RuntimeError(
                f"Directory size is too big. Size is {total}, maximum size is {limit}"
            )

    def select(self, src: str) -> tuple[list[tuple[str, str]], list[str]]:
        """(relative path, local path) of the files nbgrader's default exchange would copy
        from ``src``, and the folders it would create that none of them is in:
        CourseDirectory.ignore, include and max_file_size applied per directory as
        shutil.copytree does, and folders reached through a symbolic link copied as what
        they hold (a link back to a folder above it is not followed)."""
        ignore = ignore_patterns(
            exclude=self.coursedir.ignore,
            include=self.coursedir.include,
            max_file_size=self.coursedir.max_file_size,
            log=self.log,
        )
        selected, folders = [], []
        lineage: dict[str, frozenset[tuple[int, int]]] = {}  # a folder and those above it
        for dirpath, dirnames, filenames in os.walk(src, followlinks=True):
            info = os.stat(dirpath)
            here = (info.st_dev, info.st_ino)
            outer = lineage.get(os.path.dirname(dirpath), frozenset())
            if here in outer:
                self.log.warning("Not copying %s: a link leads back to a folder above it", dirpath)
                dirnames[:] = []
                continue
            lineage[dirpath] = outer | {here}
            if dirpath != src:
                folders.append(os.path.relpath(dirpath, src).replace(os.sep, "/"))
            ignored = set(ignore(dirpath, dirnames + filenames))
            dirnames[:] = sorted(d for d in dirnames if d not in ignored)
            for name in sorted(filenames):
                local = os.path.join(dirpath, name)
                if name in ignored:
                    continue
                if not os.path.exists(local):
                    self.log.warning("Not copying %s: a link to nothing", local)
                    continue
                selected.append((os.path.relpath(local, src).replace(os.sep, "/"), local))
        return selected, empty_folders(folders, [path for path, _ in selected])

    def scan(self, files: list[tuple[str, str]]) -> list[LocalFile]:
        return [LocalFile.scan(path, local) for path, local in files]

    def upload_inputs(
        self, files: list[LocalFile], prefix: str, missing: set[str]
    ) -> tuple[list[dict], dict[str, LocalFile]]:
        """FileInput variables, and the uploads for content the server lacks."""
        inputs, uploads = [], {}
        for i, f in enumerate(files):
            inputs.append(f.as_input())
            if f.sha256 in missing:
                uploads[f"{prefix}.{i}.content"] = f
        reused = len(files) - len(uploads)
        if reused:
            self.log.debug(
                "%d of %d files already on the exchange; not sent again", reused, len(files)
            )
        return inputs, uploads

    def paths_under(self, dest: str, paths: Iterable[str]) -> Iterator[str]:
        """Each of ``paths`` (from the service) as a local path under ``dest``; one that
        would land outside it fails the command."""
        for path in paths:
            target = safe_join(dest, path)
            if target is None:
                self.fail(f"refusing to write outside {dest}: {path!r}")
            yield target

    def downloads_into(
        self, files: list[dict], dest: str, keep_times: bool = True
    ) -> list[Download]:
        """``files`` (File dicts) to download under ``dest``; refuses a path outside it.
        ``keep_times``: each gets the modification time it was uploaded with, as
        nbgrader's shutil.copytree keeps it; without, the time it arrives, as its
        shutil.copy gives (feedback, a fetch's --replace)."""
        targets = self.paths_under(dest, (f["path"] for f in files))
        return [
            Download(
                f["url"], target, f["sha256"], int(f["size"]),
                f.get("modifiedAt") if keep_times else None,
            )
            for f, target in zip(files, targets, strict=True)
        ]

    def ignored(self, path: str) -> bool:
        """CourseDirectory.ignore on any component, as shutil.ignore_patterns does."""
        return unignored(path, self.coursedir.ignore) != path

    def folders_to_make(self, files: list[dict], folders: list[str]) -> list[str]:
        """The folders shutil.copytree would make for a release or submission: the empty
        ones it carries and every file's folder, even when selection then drops the
        file (copytree makes a folder before it filters what goes in). Under
        CourseDirectory.ignore an ignored folder is not made; those above it are."""
        parents = [f["path"].rpartition("/")[0] for f in files]
        wanted = folders + [parent for parent in parents if parent]
        kept = (unignored(path, self.coursedir.ignore) for path in wanted)
        return list(dict.fromkeys(path for path in kept if path))

    def make_folders(self, dest: str, folders: list[str]) -> None:
        """``folders`` under ``dest``; refuses a path outside it."""
        for target in self.paths_under(dest, folders):
            os.makedirs(target, exist_ok=True)

    def download(self, downloads: list[Download]) -> None:
        """Download and verify them, several at a time, logging a big transfer's progress."""
        report = self.progress("downloading", sum(d.size for d in downloads))
        try:
            self.client.download_many(downloads, report, self.download_workers)
        except ClientError as e:
            self.fail(self.explain(e))

    def download_all(self, files: list[dict], dest: str, keep_times: bool = True) -> None:
        """Download ``files`` (File dicts) under ``dest``, once every path is checked."""
        self.download(self.downloads_into(files, dest, keep_times))


def unignored(path: str, patterns: list[str]) -> str:
    """``path`` up to its first component that one of ``patterns`` matches."""
    kept = []
    for part in path.split("/"):
        if any(fnmatch.fnmatch(part, pattern) for pattern in patterns or ()):
            break
        kept.append(part)
    return "/".join(kept)


def empty_folders(folders: list[str], files: list[str]) -> list[str]:
    """Those of ``folders`` that no file and no other folder is in."""
    holding = set()
    for path in files + folders:
        parts = path.split("/")
        holding.update("/".join(parts[:depth]) for depth in range(1, len(parts)))
    return [folder for folder in folders if folder not in holding]


def safe_join(root: str, relative: str) -> str | None:
    """``root/relative``, or None when ``relative`` would escape ``root``."""
    target = os.path.normpath(os.path.join(root, *relative.split("/")))
    if os.path.commonpath([os.path.abspath(root), os.path.abspath(target)]) != os.path.abspath(
        root
    ):
        return None
    return target


__all__ = ["Exchange", "ExchangeError", "FILE", "safe_join"]
