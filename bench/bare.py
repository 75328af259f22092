"""The baseline for ``bench/ingest``: a Flask app that only reads the body and answers 200.

Served under the gateway's own gunicorn settings and loaded by the same generator, it shows what
the server, Flask and the generator cost by themselves, so the gateway's rate reads as a share.
"""

from __future__ import annotations

from flask import Flask, request

app = Flask(__name__)


@app.route("/hooks/<token>", methods=["POST", "PUT"])
def receive(token: str) -> tuple[bytes, int]:
    request.get_data()
    return b"ok", 200
