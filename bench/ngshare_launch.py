"""Start ngshare 0.6.0 as JupyterHub would, but bound to loopback only.

Run with the ngshare virtual environment's Python.  ngshare's ``main`` listens on
``0.0.0.0`` at the port of ``$JUPYTERHUB_SERVICE_URL``; this binds the same server
to 127.0.0.1 and changes nothing else (authentication, storage, Tornado settings
are ngshare's own).
"""

import sys

import ngshare.ngshare as ngshare
from tornado.httpserver import HTTPServer


class LoopbackHTTPServer(HTTPServer):
    def listen(self, port, address="", **kwargs):
        super().listen(port, "127.0.0.1", **kwargs)


ngshare.HTTPServer = LoopbackHTTPServer
ngshare.main(sys.argv[1:])
