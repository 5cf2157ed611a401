"""Answers GET / with a greeting. The Python buildpack serves it with `gunicorn app:app` on
$PORT (default 8080); `python app.py` runs Flask's development server instead."""

import os
import platform

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return f"Hello from Python {platform.python_version()} with Flask\n", {
        "Content-Type": "text/plain; charset=utf-8"
    }


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=int(os.environ.get("PORT", "8080")))
