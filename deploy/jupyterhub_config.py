"""ngshare-gql in a plain JupyterHub: add this to your jupyterhub_config.py.

The hub starts the service itself (a "hub-managed service"): it gives it the
JUPYTERHUB_* variables (API URL, its own API token, the OAuth client id and callback)
and stops it with the hub.  Users reach it at /services/ngshare-gql/ through the
hub's proxy; notebook servers reach it with their own JUPYTERHUB_API_TOKEN.

What an operator sets, in the environment the hub starts with (every NGSHARE_*
variable of the README's table, and the S3 client's AWS_* ones, are passed on to the
service; a hub-managed service sees no other variable of the hub's):
  NGSHARE_DATABASE_URL   default: SQLite under ngshare_gql's instance folder; a
                         PostgreSQL URL for anything shared
  NGSHARE_BLOB_STORE     sql (default) | filesystem (+ NGSHARE_BLOB_DIR) | s3 (+
                         NGSHARE_S3_*, AWS_*)
  NGSHARE_ADMINS         comma-separated user names that administer every course
                         (hub admins always do)
  NGSHARE_SECRET_KEY     signs browser session cookies; default: derived from the
                         service's hub token, which changes when the hub restarts
                         (sessions then end); set it to keep them
  NGSHARE_PORT           the loopback port the service listens on (default 10101)

Notebook servers find the service at $NGSHARE_URL: set it for them, e.g.
  c.Spawner.environment = {"NGSHARE_URL": "https://YOUR-HUB/services/ngshare-gql/"}

This file adds to what your configuration sets before loading it (services, roles,
extra_user_scopes, the notebook servers' token scopes as a list) and replaces none of
it: load it after those settings.
"""

import os
import sys

import jupyterhub

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

SERVICE = "ngshare-gql"
SERVICE_PORT = int(os.environ.get("NGSHARE_PORT", "10101"))
GUNICORN_CONF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gunicorn.conf.py")
ACCESS = f"access:services!service={SERVICE}"
#: The hub's variables the service is given: its own settings and the S3 client's.
PASSED_ON = ("NGSHARE_", "AWS_")

c.JupyterHub.services.append(
    {
        "name": SERVICE,
        "url": f"http://127.0.0.1:{SERVICE_PORT}",
        # Migrate the database first; then gunicorn (gthread workers, settings from
        # NGSHARE_WORKERS/NGSHARE_THREADS, see gunicorn.conf.py) serves the app.
        "command": [
            "sh",
            "-c",
            f'"{sys.executable}" -m flask --app ngshare_gql:create_app db upgrade && '
            f'exec "{sys.executable}" -m gunicorn -c "{GUNICORN_CONF}" "ngshare_gql:create_app()"',
        ],
        "environment": {
            **{key: value for key, value in os.environ.items() if key.startswith(PASSED_ON)},
            # Where the hub's proxy sends it, whatever NGSHARE_BIND the hub's image has.
            "NGSHARE_BIND": f"127.0.0.1:{SERVICE_PORT}",
        },
        # Users already trust the hub; skip the "authorize this service?" page.
        "oauth_no_confirm": True,
        "display": True,
    }
)

# Every user may use the service (the service decides what they may do per course).
# If your configuration defines the "user" role, add ACCESS to its scopes instead:
# JupyterHub then ignores extra_user_scopes (6) or refuses a second "user" (before 6).
if jupyterhub.version_info >= (6,):
    extra = c.JupyterHub.extra_user_scopes
    extra.add(ACCESS)  # onto a set configured before this file
    extra.append(ACCESS)  # onto a list
else:
    c.JupyterHub.load_roles.append({"name": "user", "scopes": ["self", ACCESS]})

# The service reads users and groups: group-based course roles, and the current rights
# of a browser session's user.
c.JupyterHub.load_roles.append(
    {"name": f"{SERVICE}-service", "services": [SERVICE], "scopes": ["read:users", "read:groups"]}
)

# Notebook servers' JUPYTERHUB_API_TOKEN carries the access scope, so nbgrader inside
# them can call the service.  Added to the scopes your configuration lists; with none
# listed a token gets the default "server" role's scopes, so those are listed too (a
# list of yours gets them as well).  A list set for a Spawner subclass
# (c.KubeSpawner.server_token_scopes) or a callable takes precedence: put ACCESS in it.
c.Spawner.server_token_scopes.extend(["users:activity!user", "access:servers!server", ACCESS])
