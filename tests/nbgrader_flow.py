"""Helpers for driving nbgrader's own apps as an instructor and a student.

``run`` invokes the real nbgrader command-line application (the code behind the
``nbgrader`` script) in this process, as one user in one directory with that
user's environment, and returns its exit code and log; ``exchange_list`` returns
the dicts ``ExchangeList.start()`` gives the Assignment List page.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import StringIO

import pytest
from jupyter_core.application import NoStart
from nbgrader.apps import NbGraderApp
from nbgrader.auth import Authenticator
from nbgrader.coursedir import CourseDirectory
from nbgrader.exchange import ExchangeFactory
from traitlets.config import Config

from ngshare_gql.nbgrader import configure


@contextlib.contextmanager
def environment(cwd: str, env: dict[str, str]) -> Iterator[None]:
    old_cwd, old_env = os.getcwd(), dict(os.environ)
    os.chdir(cwd)
    os.environ.update(env)
    try:
        yield
    finally:
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)


@dataclass
class User:
    """One person: a directory they work in, their token, and their nbgrader config."""

    name: str
    home: str
    token: str | None = None
    config: dict[str, object] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        env = {
            "JUPYTER_CONFIG_PATH": os.path.join(self.home, ".jupyter-empty"),
            # nbgrader's gradebook runs the `alembic` script of this environment.
            "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
        }
        if self.token is not None:
            env["JUPYTERHUB_API_TOKEN"] = self.token
        return env

    def flags(self) -> list[str]:
        return [f"--{key}={value}" for key, value in self.config.items()]

    def run(
        self, *args: str, cwd: str | None = None, log: StringIO | None = None
    ) -> tuple[int, str]:
        """``nbgrader <args>`` as this user; (exit code, log output). The log also goes
        to ``log`` when given, so it is kept when the app raises."""
        os.makedirs(self.env["JUPYTER_CONFIG_PATH"], exist_ok=True)
        with environment(cwd or self.home, self.env):
            app = NbGraderApp.instance()
            buffer = StringIO() if log is None else log
            try:
                app.initialize([*args, *self.flags()])
                app.init_logging(logging.StreamHandler, [buffer], color=False, subapps=True)
                app.start()
                code = 0
            except NoStart:
                code = 0
            except SystemExit as e:
                code = e.code or 0
            finally:
                app.reset()
        return code, buffer.getvalue()

    def ok(self, *args: str, cwd: str | None = None) -> str:
        code, out = self.run(*args, cwd=cwd)
        assert code == 0, f"nbgrader {' '.join(args)} as {self.name} exited {code}:\n{out}"
        return out

    def fails(self, *args: str, cwd: str | None = None) -> str:
        code, out = self.run(*args, cwd=cwd)
        assert code == 1, f"nbgrader {' '.join(args)} as {self.name} exited {code}:\n{out}"
        return out

    def raises(self, error: type[BaseException], *args: str) -> str:
        """``nbgrader <args>`` ending in ``error``, which the app lets through as
        nbgrader's own exchange does (max_dir_size's RuntimeError); the log output."""
        log = StringIO()
        with pytest.raises(error):
            self.run(*args, log=log)
        return log.getvalue()

    def exchange_list(self, cwd: str | None = None, **traits: object) -> list[dict]:
        """What the Assignment List page shows: ``ExchangeList.start()``."""
        c = Config()
        for key, value in self.config.items():
            section, name = key.split(".")
            setattr(getattr(c, section), name, value)
        for name, value in traits.items():
            setattr(c.ExchangeList, name, value)
        with environment(cwd or self.home, self.env):
            coursedir = CourseDirectory(config=c)
            factory = ExchangeFactory(config=c)
            lister = factory.List(
                coursedir=coursedir, authenticator=Authenticator(config=c), config=c
            )
            return lister.start()


def plugin_config(url: str) -> dict[str, object]:
    """Command-line config selecting our plugins (what ``configure`` sets)."""
    c = Config()
    configure(c, url)
    return {f"ExchangeFactory.{k}": v for k, v in c.ExchangeFactory.items()} | {"Exchange.url": url}
