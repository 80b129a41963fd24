"""ngshare-gql in a plain JupyterHub: add this to your jupyterhub_config.py.

The hub starts the service itself (a "hub-managed service"): it gives it the
JUPYTERHUB_* variables (API URL, its own API token, the OAuth client id and callback)
and stops it with the hub.  Users reach it at /services/ngshare-gql/ through the
hub's proxy; notebook servers reach it with their own JUPYTERHUB_API_TOKEN.

What an operator sets (here, or in the environment the hub passes on):
  NGSHARE_DATABASE_URL   default: SQLite under ngshare_gql's instance folder; a
                         PostgreSQL URL for anything shared
  NGSHARE_BLOB_STORE     sql (default) | filesystem (+ NGSHARE_BLOB_DIR) | s3
  NGSHARE_ADMINS         comma-separated user names that administer every course
                         (hub admins always do)
  NGSHARE_SECRET_KEY     signs browser session cookies; default: derived from the
                         service's hub token, which changes when the hub restarts
                         (sessions then end); set it to keep them
"""

import os
import sys

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

SERVICE = "ngshare-gql"
SERVICE_PORT = int(os.environ.get("NGSHARE_PORT", "10101"))
GUNICORN_CONF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gunicorn.conf.py")

c.JupyterHub.services = [
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
            key: os.environ[key]
            for key in (
                "NGSHARE_DATABASE_URL",
                "NGSHARE_BLOB_STORE",
                "NGSHARE_BLOB_DIR",
                "NGSHARE_ADMINS",
                "NGSHARE_SECRET_KEY",
            )
            if key in os.environ
        },
        # Users already trust the hub; skip the "authorize this service?" page.
        "oauth_no_confirm": True,
        "display": True,
    }
]

c.JupyterHub.load_roles = [
    # Every user may use the service (the service decides what they may do per course).
    {"name": "user", "scopes": ["self", f"access:services!service={SERVICE}"]},
    # The service reads users and groups (for group-based course roles).
    {"name": f"{SERVICE}-service", "services": [SERVICE], "scopes": ["read:users", "read:groups"]},
]

# Notebook servers' JUPYTERHUB_API_TOKEN carries the access scope, so nbgrader inside
# them can call the service.  The first two are the default "server" role's scopes.
c.Spawner.server_token_scopes = [
    "users:activity!user",
    "access:servers!server",
    f"access:services!service={SERVICE}",
]
