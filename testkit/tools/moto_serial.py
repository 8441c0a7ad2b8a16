"""moto server with DynamoDB made serializable, as the real service is.

moto's DynamoDB keeps tables in Python objects and TransactWriteItems rolls back by
restoring a deep copy of every table it names, with no lock: two requests served at once by
moto's threaded server can interleave, and a failed transaction's restore can undo a write
that succeeded meanwhile. Real DynamoDB never does that, and Krafter's exactly-once and quota
rules rely on it. This launcher runs moto's own server with one change: requests to DynamoDB
and DynamoDB Streams are served one at a time. Every other service stays concurrent (SQS long
polls must not block the tables).

Usage: python moto_serial.py -H 127.0.0.1 -p PORT
"""

import argparse
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

SERIAL_TARGETS = ("DynamoDB_", "DynamoDBStreams_")


class SerialDynamoDb:
    """WSGI middleware: one DynamoDB request at a time, the response read under the lock."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith(SERIAL_TARGETS):
            return self.app(environ, start_response)
        with self.lock:
            return list(self.app(environ, start_response))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True
    run_simple(
        args.host,
        args.port,
        SerialDynamoDb(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
