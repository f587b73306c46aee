"""FileCheck-style pass tests: each case of tests/filecheck/<pass>.mlir is parsed, run through its `// RUN:`
passes, verified, printed, and matched against its `// CHECK:` (in order) and `// CHECK-NOT:` lines
(absent between the checks around them), as LLVM's FileCheck does. Cases are separated by `// -----`."""

from __future__ import annotations

from pathlib import Path

import pytest

from plait.ir import parse_module, print_module, verify_module
from plait.ir.pipeline import passes, run_passes

CASES = [(path, i, text) for path in sorted((Path(__file__).parent / "filecheck").glob("*.mlir"))
         for i, text in enumerate(path.read_text().split("// -----\n"))]


def directives(text: str, kind: str) -> list[str]:
    return [line.split(f"// {kind}:", 1)[1].strip() for line in text.splitlines() if f"// {kind}:" in line]


def filecheck(output: str, text: str) -> None:
    """Fail unless `output` matches the CHECK / CHECK-NOT lines of `text`, in order."""
    position, forbidden = 0, []
    for line in text.splitlines():
        if "// CHECK-NOT:" in line:
            forbidden.append(line.split("// CHECK-NOT:", 1)[1].strip())
        elif "// CHECK:" in line:
            pattern = line.split("// CHECK:", 1)[1].strip()
            found = output.find(pattern, position)
            assert found >= 0, f"CHECK not found after offset {position}: {pattern}\n--- output:\n{output}"
            for bad in forbidden:
                assert bad not in output[position:found], f"CHECK-NOT {bad!r} matched\n--- output:\n{output}"
            position, forbidden = found + len(pattern), []
    for bad in forbidden:
        assert bad not in output[position:], f"CHECK-NOT {bad!r} matched\n--- output:\n{output}"


@pytest.mark.parametrize(("path", "index", "text"), CASES, ids=[f"{p.stem}-{i}" for p, i, _ in CASES])
def test_pass_output_matches_its_checks(path: Path, index: int, text: str) -> None:
    (run,) = directives(text, "RUN")
    source = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    module = parse_module(source)
    verify_module(module)
    run_passes(module, passes([name.strip() for name in run.split(",")]))
    filecheck(print_module(module, locations=False), text)
    assert directives(text, "CHECK"), f"{path.name} case {index} checks nothing"
