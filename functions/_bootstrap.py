"""Puts the repository root on sys.path so `shared` imports when functions-framework
loads a module of this folder by file path (it adds only this folder).

Also turns off pydantic's plugin lookup: we use no pydantic plugin, and the lookup reads the entry
points of every installed distribution when the first validator is built, ~4-5 ms of a cold start's
first request (of ~0.45 s of CPU for the bench's floor; bench/cold_start.py)."""
import os
import sys
from pathlib import Path

os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
