"""The WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""

import gc

from saas import create_app

app = create_app()
# Everything built at start-up (mappers, routes, templates' environment) lives for the whole process:
# moved out of the collector's reach, a full collection no longer walks it in the middle of a request
# (bench/calendar.py: p95 of the list API 114 ms → under 40 ms on the 2-core machine).
gc.freeze()
