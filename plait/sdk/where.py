"""Where in the user's code the tracer is: the innermost frame outside plait, as file:line."""

from __future__ import annotations

import linecache
import os
import sys
from pathlib import Path
from types import FrameType

PLAIT_DIR = str(Path(__file__).resolve().parent.parent) + os.sep  # plait/ (the SDK and the CLI)


def user_frame(files: set[str] | None = None) -> FrameType | None:
    """The innermost stack frame of the user's code.

    With `files` (the files of the functions being traced), the innermost frame in one of them;
    else the innermost frame outside plait's own package.
    """
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if files is not None:
            if filename in files:
                return frame
        elif not os.path.abspath(filename).startswith(PLAIT_DIR) and not filename.startswith("<frozen"):
            return frame
        frame = frame.f_back  # type: ignore[assignment]
    return None


def display_path(filename: str) -> str:
    """`filename` relative to the working directory when it lies under it, else as given."""
    try:
        rel = os.path.relpath(filename)
    except ValueError:
        return filename
    return filename if rel.startswith("..") else rel


def loc() -> str:
    """The user's "file.py:line" (basename), as stored on nodes."""
    frame = user_frame()
    return "" if frame is None else f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"


def source_line(frame: FrameType | None) -> str:
    """The stripped source line the frame is executing ('' when unknown)."""
    if frame is None:
        return ""
    return linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()


def here(agent: str = "", files: set[str] | None = None, fallback: str = "") -> str:
    """A message line naming the user's place: `agent 'solve', react.py:14:   if done:`.

    `files` narrows the search as in `user_frame`; `fallback` ("file.py:line") is used when no frame is found.
    """
    frame = user_frame(files)
    if frame is None:
        prefix = f"agent {agent!r}, " if agent else ""
        return prefix + fallback if fallback else "(outside any user code)"
    place = f"{display_path(frame.f_code.co_filename)}:{frame.f_lineno}"
    prefix = f"agent {agent!r}, " if agent else ""
    line = source_line(frame)
    return f"{prefix}{place}:" + (f"   {line}" if line else "")
