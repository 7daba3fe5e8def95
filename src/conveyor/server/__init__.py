"""The HTTP server: the REST API under ``/api`` and the web UI, on one FastAPI app.

``create_app(state)`` builds it (``app.py``); ``ServerState`` (``state.py``) holds
the instance and the workspace the routes read; every route asks ``auth.authorize``
before it reads or acts.
"""
