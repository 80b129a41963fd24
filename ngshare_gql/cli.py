"""Operator commands on the Flask CLI: ``flask --app wsgi course|blobs ...``.

They act as the service operator (an admin) and are written to the audit log
under the actor name ``operator``.
"""

from __future__ import annotations

from datetime import timedelta

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from ngshare_gql.auth import Identity
from ngshare_gql.domain import courses
from ngshare_gql.errors import ExchangeError, NotFound
from ngshare_gql.extensions import db
from ngshare_gql.models import Course, Role, utcnow
from ngshare_gql.roles import Caller
from ngshare_gql.storage.gc import collect_garbage, collect_orphans

course_cli = AppGroup("course", help="Create, list and remove courses and their rosters.")


def operator() -> Caller:
    return Caller(identity=Identity(name="operator", admin=True), admin=True)


def _fail(exc: ExchangeError) -> None:
    raise click.ClickException(exc.message)


@course_cli.command("add")
@click.argument("course_id")
@click.option("--title", default=None, help="A human-readable title.")
@click.option("--instructor", "instructors", multiple=True, help="Instructor user name.")
@click.option("--student", "students", multiple=True, help="Student user name.")
def add_course(course_id: str, title: str | None, instructors, students) -> None:
    """Create COURSE_ID if needed and add instructors and students to it."""
    caller = operator()
    try:
        if db.session.get(Course, course_id) is None:
            courses.create_course(caller, course_id, title)
            click.echo(f"created course {course_id}")
        for role, users in ((Role.INSTRUCTOR, instructors), (Role.STUDENT, students)):
            if users:
                courses.add_members(
                    caller, course_id, role, [courses.MemberSpec(user=u) for u in users]
                )
                click.echo(f"{role.value}s of {course_id}: {', '.join(users)}")
    except ExchangeError as exc:
        _fail(exc)


@course_cli.command("list")
def list_courses() -> None:
    """List courses with their instructors and students."""
    caller = operator()
    for course in courses.list_courses(caller):
        members = courses.roster(caller, course.id)
        instructors = [m.user for m in members if m.role is Role.INSTRUCTOR]
        students = [m.user for m in members if m.role is Role.STUDENT]
        click.echo(
            f"{course.id}\t{course.title}\tinstructors: {', '.join(instructors) or '-'}"
            f"\tstudents: {', '.join(students) or '-'}"
        )


@course_cli.command("remove")
@click.argument("course_id")
@click.option("--instructor", "instructors", multiple=True, help="Remove only this instructor.")
@click.option("--student", "students", multiple=True, help="Remove only this student.")
@click.option("--yes", is_flag=True, help="Delete the whole course without asking.")
def remove_course(course_id: str, instructors, students, yes: bool) -> None:
    """Remove members from COURSE_ID, or (with no member given) delete the course."""
    caller = operator()
    try:
        if instructors or students:
            for role, users in ((Role.INSTRUCTOR, instructors), (Role.STUDENT, students)):
                if users:
                    n = courses.remove_members(caller, course_id, list(users), role)
                    click.echo(f"removed {n} {role.value}(s) from {course_id}")
            return
        if db.session.get(Course, course_id) is None:
            raise NotFound(f"no course {course_id!r}")
        if not yes:
            click.confirm(
                f"Delete course {course_id} with all its assignments and submissions?", abort=True
            )
        courses.delete_course(caller, course_id)
        click.echo(f"deleted course {course_id}")
    except ExchangeError as exc:
        _fail(exc)


blobs_cli = AppGroup("blobs", help="Maintain the blob store.")


@blobs_cli.command("gc")
@click.option(
    "--min-age",
    type=float,
    default=0.0,
    show_default=True,
    help="Keep blobs stored less than this many seconds ago.",
)
def collect_blobs(min_age: float) -> None:
    """Remove stored contents that no release, submission or feedback uses.

    Safe to run at any time, on any instance, while the service runs."""
    store = current_app.extensions["ngshare"].blobs
    older_than = utcnow() - timedelta(seconds=min_age) if min_age > 0 else None
    removed = collect_garbage(store, older_than=older_than)
    click.echo(f"removed {len(removed)} unreferenced blobs")
    orphans = collect_orphans(store, older_than=older_than)
    click.echo(f"removed {len(orphans)} stored contents with no index entry")


def register(app: Flask) -> None:
    app.cli.add_command(course_cli)
    app.cli.add_command(blobs_cli)
