"""gunicorn settings for ngshare-gql:  ``gunicorn -c deploy/gunicorn.conf.py wsgi:app``.

Environment (all optional):
  NGSHARE_BIND      host:port to listen on.  Default: the host and port of
                    JUPYTERHUB_SERVICE_URL when the hub runs us as a managed service,
                    else 0.0.0.0:8080 (a container).
  NGSHARE_WORKERS   worker processes (default 2)
  NGSHARE_THREADS   threads per worker (default 8); gthread workers keep slow
                    uploads and downloads from blocking other requests
  NGSHARE_TIMEOUT   seconds a request may stall before its worker is restarted (default 120)
  NGSHARE_KEEPALIVE seconds an idle connection is kept open (default 75)

Metrics of all workers are summed through prometheus_client's multiprocess mode:
PROMETHEUS_MULTIPROC_DIR (a fresh private folder unless set) holds each worker's files.
gunicorn's control socket is off, so several instances on one machine cannot clash on
its default path.  Each worker freezes what it made while starting (see
``post_worker_init``).
"""

import functools
import gc
import os
import shutil
import signal
import tempfile
from urllib.parse import urlparse


def _bind() -> str:
    if os.environ.get("NGSHARE_BIND"):
        return os.environ["NGSHARE_BIND"]
    service_url = os.environ.get("JUPYTERHUB_SERVICE_URL")
    if service_url:
        url = urlparse(service_url)
        return f"{url.hostname}:{url.port or 80}"
    return "0.0.0.0:8080"


bind = _bind()
worker_class = "gthread"
workers = int(os.environ.get("NGSHARE_WORKERS", "2"))
threads = int(os.environ.get("NGSHARE_THREADS", "8"))
timeout = int(os.environ.get("NGSHARE_TIMEOUT", "120"))
graceful_timeout = 30
# Longer than a proxy in front keeps a connection idle without using it.  JupyterHub's
# proxy (configurable-http-proxy) reuses its connections to us however long they have
# been idle; a request it sends on one just as we close it comes back to the user as
# its 503.  With 5 s, calls through it timed to that moment failed: 2 in 2,400.  Behind
# a load balancer, set this above its idle timeout (often 60 s).
keepalive = int(os.environ.get("NGSHARE_KEEPALIVE", "75"))
# The app writes one JSON line per request itself (ngshare_gql.metrics); gunicorn's
# access log would repeat it.
accesslog = None
errorlog = "-"
control_socket_disable = True

# Set before any worker imports the app, so prometheus_client starts in multiprocess mode.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(_metrics_dir, exist_ok=True)
    _owned = False
else:
    _metrics_dir = tempfile.mkdtemp(prefix="ngshare-gql-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir
    _owned = True


def on_starting(server) -> None:
    """Counters restart with the server: drop files a previous run left behind."""
    for name in os.listdir(_metrics_dir):
        if name.endswith(".db"):
            os.remove(os.path.join(_metrics_dir, name))


def post_fork(server, worker) -> None:
    """The app keeps a database connection per request thread: tell it how many
    threads this worker really has (``--threads`` may override NGSHARE_THREADS)."""
    os.environ.setdefault("NGSHARE_DB_POOL_SIZE", str(worker.cfg.threads))


def post_worker_init(worker) -> None:
    """Keep what the worker made while loading the app (modules, the schema, the ORM's
    mappers: ~100,000 objects that live as long as it does) out of the cyclic garbage
    collector's full passes.  Each such pass walked them all, stopping every thread
    for 50-70 ms, the first of them in the middle of the first large upload."""
    gc.collect()
    gc.freeze()
    _quit_without_shutting_the_pool_down(worker)


def _quit_without_shutting_the_pool_down(worker) -> None:
    """gunicorn's gthread worker shuts its thread pool down inside its SIGQUIT and
    SIGINT handler.  When the signal lands while the main thread is handing a
    connection to that pool, the pool's lock (not reentrant) is already held, and the
    worker hangs until the master kills it after graceful_timeout: Ctrl-C on the demo
    often took 30 s.  Quit as gunicorn's base worker does; the pool's threads are
    joined as the interpreter exits."""
    if not hasattr(worker, "tpool"):
        return
    from gunicorn.workers.base import Worker

    quit_now = functools.partial(Worker.handle_quit, worker)
    signal.signal(signal.SIGQUIT, quit_now)
    signal.signal(signal.SIGINT, quit_now)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _owned:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
