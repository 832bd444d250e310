"""The WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""

import gc

from saas import create_app

app = create_app()
# Everything built at start-up (mappers, routes, templates' environment) lives for the whole process:
# moved out of the collector's reach, a full collection no longer walks it in the middle of a request
# (bench/calendar.py on the 2-core machine: the list API's p95 went from 114 ms to 39-54 ms).
gc.freeze()
