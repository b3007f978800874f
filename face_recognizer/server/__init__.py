"""`face-recognizer serve`: a REST API under /api/v1 and a web console, on one gallery.

Installed with the `[server]` extra (FastAPI, uvicorn, python-multipart, Pillow). The modules:

* `photos`   uploaded bytes -> BGR pixels, with the size, pixel and format limits
* `keys`     API keys: made, hashed (only the hash is stored), described
* `gallery`  the ONE place that calls the store and the enrolment path for the server; it
             also says how the ONNX sessions and the store are shared between threads
* `live`     the `--source` recognizer on a background thread, as MJPEG frames and a status
* `app`      the FastAPI application: routes, authentication, errors as `{"error": "..."}`
* `static/`  the console (plain HTML, CSS and JavaScript; no build step)

Only `app` imports FastAPI, so the CLI's `keys` commands work without starting a server.
"""
