"""Where in the user's code the tracer is: the innermost frame outside plait.sdk, as file:line."""

from __future__ import annotations

import linecache
import os
import sys
from pathlib import Path
from types import FrameType

_SDK_DIR = str(Path(__file__).resolve().parent)


def user_frame() -> FrameType | None:
    """The innermost stack frame whose code is not part of plait.sdk (the user's agent code)."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not os.path.abspath(filename).startswith(_SDK_DIR) and not filename.startswith("<frozen"):
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


def here(agent: str = "") -> str:
    """A message line naming the user's place: `agent 'solve', react.py:14:   if done:`."""
    frame = user_frame()
    if frame is None:
        return "(outside any user code)"
    place = f"{display_path(frame.f_code.co_filename)}:{frame.f_lineno}"
    prefix = f"agent {agent!r}, " if agent else ""
    line = source_line(frame)
    return f"{prefix}{place}:" + (f"   {line}" if line else "")
