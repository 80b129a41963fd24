"""ngshare-gql: the nbgrader exchange as a JupyterHub service with a GraphQL API."""

from ngshare_gql.app import create_app

__all__ = ["create_app"]
