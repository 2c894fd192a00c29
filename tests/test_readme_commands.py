"""Every command the README quotes still runs: the CLI's and the bench scripts' subcommands and
flags are parsed (``WNSENSE_PARSE_ONLY=1``: the program exits right after parsing, so a renamed
flag, experiment or script fails here instead of in a reader's terminal). Cheap listing commands
run for real. Every ```python block of the README runs as written, in a fresh interpreter (a
block right after the line ``<!-- readme-test: long -->`` is skipped)."""
from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
pytestmark = pytest.mark.skipif(not README.is_file(), reason="README.md is not in this checkout")


def quoted_commands(text: str) -> list[str]:
    """``python -m wnsense_native ...`` and ``python bench/...`` commands, from code blocks (one
    per line, comments dropped) and from inline code (which may wrap across lines)."""
    found = []
    in_block = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_block = not in_block
            continue
        if in_block:
            cmd = line.split(" #")[0].strip()
            for part in cmd.split("&&"):
                part = part.strip()
                if part.startswith(("python -m wnsense_native", "python bench/")):
                    found.append(part)
    for m in re.finditer(r"`(python (?:-m wnsense_native|bench/)[^`]*)`", text):
        found.append(" ".join(m.group(1).split()))
    return sorted(set(found))


COMMANDS = quoted_commands(README.read_text()) if README.is_file() else []


def test_the_readme_quotes_commands():
    assert any(c.startswith("python -m wnsense_native demo") for c in COMMANDS), COMMANDS
    assert any(c.startswith("python bench/") for c in COMMANDS), COMMANDS


def _expand(cmd):
    """``[--dtype float32 --packed]`` in a quoted command means "optionally": run both."""
    m = re.search(r"\[([^\]]*)\]", cmd)
    if not m:
        return [cmd]
    return _expand(cmd[:m.start()] + cmd[m.end():]) + _expand(cmd[:m.start()] + m.group(1)
                                                              + cmd[m.end():])


@pytest.mark.parametrize("cmd", COMMANDS)
def test_quoted_command_still_runs(cmd, tmp_path):
    for variant in _expand(cmd):
        argv = shlex.split(variant)
        assert argv[0] == "python"
        if argv[1] != "-m":
            assert (ROOT / argv[1]).is_file(), f"{argv[1]} is quoted by the README but missing"
        real = "--list" in argv                       # cheap: run it for real
        env = dict(os.environ)
        if not real:
            env["WNSENSE_PARSE_ONLY"] = "1"
        proc = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, (variant, proc.stdout, proc.stderr)
        assert proc.stdout.strip(), variant


# ------------------------------------------------------------------------------------------------
# the python code blocks

LONG_MARKER = "<!-- readme-test: long -->"


def python_blocks(text: str) -> list[tuple[int, str, bool]]:
    """``(line number, code, marked long)`` of every ```python block."""
    blocks, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start = i + 1
            j = start
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            long_ = i > 0 and lines[i - 1].strip() == LONG_MARKER
            blocks.append((start + 1, "\n".join(lines[start:j]) + "\n", long_))
            i = j
        i += 1
    return blocks


BLOCKS = python_blocks(README.read_text()) if README.is_file() else []


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 2
    assert any("wn.solve" in code for _, code, _ in BLOCKS)


@pytest.mark.parametrize("line,code,long_", BLOCKS, ids=[f"line{n}" for n, _, _ in BLOCKS])
def test_python_block_runs_as_written(line, code, long_, tmp_path):
    if long_:
        pytest.skip(f"README line {line}: marked long")
    for module in ("distributed", "scipy", "matplotlib"):
        if (f"import {module}" in code and importlib.util.find_spec(module) is None):
            pytest.skip(f"README line {line} needs {module} (an optional extra)")
    # one thread: the numbers are the same bit for bit, and a busy machine does not slow the
    # small problems of the README down several times (they gain nothing from threads)
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-"], input=code, cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (f"README line {line}", proc.stdout, proc.stderr[-3000:])
    if "print(" in code:
        assert proc.stdout.strip(), f"README line {line} prints nothing"
