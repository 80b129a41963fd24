"""nbgrader exchange plugins that talk to the ngshare-gql service over GraphQL.

Select them all in ``nbgrader_config.py`` with::

    from ngshare_gql.nbgrader import configure
    configure(c, url="http://proxy-public/services/ngshare-gql/")  # url optional

or one by one with ``c.ExchangeFactory.<op> = "ngshare_gql.nbgrader.<Class>"``.
"""

from __future__ import annotations

from typing import Any

from ngshare_gql.nbgrader.collect import ExchangeCollect
from ngshare_gql.nbgrader.exchange import Exchange, ExchangeError
from ngshare_gql.nbgrader.fetch_assignment import ExchangeFetchAssignment
from ngshare_gql.nbgrader.fetch_feedback import ExchangeFetchFeedback
from ngshare_gql.nbgrader.list import ExchangeList
from ngshare_gql.nbgrader.release_assignment import ExchangeReleaseAssignment
from ngshare_gql.nbgrader.release_feedback import ExchangeReleaseFeedback
from ngshare_gql.nbgrader.submit import ExchangeSubmit

#: ExchangeFactory trait -> class, for :func:`configure`.
PLUGINS = {
    "exchange": Exchange,
    "fetch_assignment": ExchangeFetchAssignment,
    "fetch_feedback": ExchangeFetchFeedback,
    "release_assignment": ExchangeReleaseAssignment,
    "release_feedback": ExchangeReleaseFeedback,
    "list": ExchangeList,
    "submit": ExchangeSubmit,
    "collect": ExchangeCollect,
}


def configure(c: Any, url: str | None = None) -> None:
    """Point every ExchangeFactory trait of config ``c`` at these plugins."""
    for trait, cls in PLUGINS.items():
        setattr(c.ExchangeFactory, trait, f"{cls.__module__}.{cls.__name__}")
    if url:
        c.Exchange.url = url


__all__ = [
    "Exchange",
    "ExchangeCollect",
    "ExchangeError",
    "ExchangeFetchAssignment",
    "ExchangeFetchFeedback",
    "ExchangeList",
    "ExchangeReleaseAssignment",
    "ExchangeReleaseFeedback",
    "ExchangeSubmit",
    "configure",
]
