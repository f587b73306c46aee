"""Load FILE:AGENT: import the user's file and return the named @plait.agent, or a LoadError saying why not."""

from __future__ import annotations

import difflib
import importlib.util
import sys
import traceback
from pathlib import Path

from plait.sdk.decorators import Agent, Tool
from plait.sdk.errors import LoadError, PlaitError
from plait.sdk.where import display_path

EXAMPLE = "plait graph examples/rag.py:answer"


def split_target(target: str) -> tuple[Path, str]:
    """Split "FILE:AGENT" into the file's path and the agent's name."""
    file, sep, name = target.rpartition(":")
    if not sep or not file or not name.isidentifier():
        raise LoadError(f"expected FILE:AGENT, got {target!r}\n"
                        f"  To fix: name a Python file and an agent in it, e.g. `{EXAMPLE}`.")
    return Path(file), name


def _missing_file(path: Path) -> LoadError:
    folder = path.parent if path.parent.is_dir() else Path(".")
    files = sorted(p.name for p in folder.glob("*.py"))
    close = difflib.get_close_matches(path.name, files, n=1, cutoff=0.6)
    hint = f"did you mean {str(folder / close[0])!r}? " if close else ""
    return LoadError(f"no such agent file: {str(path)!r}\n  To fix: {hint}give the path of a Python file "
                     f"defining the agent, e.g. `{EXAMPLE}`.")


def load_module(path: Path) -> dict[str, object]:
    """Run the user's file as a module and return its globals."""
    if not path.is_file():
        raise _missing_file(path)
    module_name = f"_plait_user_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise LoadError(f"cannot import {str(path)!r} as Python\n  To fix: give a .py file.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    sys.path.insert(0, str(path.resolve().parent))
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        line = (err.text or "").rstrip("\n").strip()
        raise LoadError(f"syntax error in the agent file: {err.msg}\n"
                        f"  {display_path(err.filename or str(path))}:{err.lineno}:   {line}\n"
                        "  To fix: correct the Python syntax at that line.") from None
    except PlaitError:
        raise
    except (SystemExit, KeyboardInterrupt) as err:
        what = f"called exit({err.code!r})" if isinstance(err, SystemExit) else "raised KeyboardInterrupt"
        raise LoadError(f"importing the agent file {what}\n  {display_path(str(path))}\n"
                        "  To fix: keep the file importable: put script code under "
                        "`if __name__ == \"__main__\":`.") from None
    except Exception as err:
        frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename == str(path)
                  or Path(f.filename).resolve() == path.resolve()]
        place = f"{display_path(frames[-1].filename)}:{frames[-1].lineno}:   {frames[-1].line}" if frames \
            else display_path(str(path))
        raise LoadError(f"importing the agent file raised {type(err).__name__}: {err}\n  {place}\n"
                        "  To fix: make the file import cleanly with `python FILE`.") from None
    finally:
        sys.path.remove(str(path.resolve().parent))
    return vars(module)


def load_agent(target: str) -> Agent:
    """The @plait.agent named by "FILE:AGENT"."""
    path, name = split_target(target)
    namespace = load_module(path)
    agents = sorted(k for k, v in namespace.items() if isinstance(v, Agent))
    found = namespace.get(name)
    if isinstance(found, Agent):
        return found
    where = display_path(str(path))
    listing = f"the agents in {where} are: {', '.join(agents)}" if agents \
        else f"{where} defines no @plait.agent yet"
    if found is None:
        close = difflib.get_close_matches(name, agents, n=1, cutoff=0.5)
        hint = f"did you mean {where}:{close[0]}? " if close else ""
        raise LoadError(f"no agent {name!r} in {where}\n  To fix: {hint}{listing}.")
    what = "a @plait.tool" if isinstance(found, Tool) else f"a {type(found).__name__}"
    raise LoadError(f"{name!r} in {where} is not a @plait.agent (it is {what})\n"
                    f"  To fix: decorate it with @plait.agent, or name another agent; {listing}.")
