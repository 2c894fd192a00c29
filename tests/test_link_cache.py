"""cmake/link_cache.py, the linker launcher that makes a repeated ``pip install .`` cheap: a link
whose command and input files are byte-identical is not run again (its output is copied back);
any change of an input runs it."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "cmake" / "link_cache.py"
pytestmark = pytest.mark.skipif(not SCRIPT.is_file(), reason="cmake/link_cache.py not in checkout")


@pytest.fixture()
def link_cache():
    spec = importlib.util.spec_from_file_location("link_cache", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_identical_link_is_reused_and_a_changed_input_relinks(link_cache, tmp_path, monkeypatch):
    # a stand-in linker: concatenates its inputs into -o and counts its runs
    linker = tmp_path / "fake_ld.py"
    linker.write_text(
        "import sys, pathlib\n"
        "args = sys.argv[1:]\n"
        "out = args[args.index('-o') + 1]\n"
        "ins = [a for a in args if a.endswith('.o')]\n"
        "pathlib.Path(out).write_bytes(b''.join(pathlib.Path(i).read_bytes() for i in ins))\n"
        "c = pathlib.Path(out).parent / 'runs'\n"
        "c.write_text(str(int(c.read_text()) + 1 if c.exists() else 1))\n")
    a, b = tmp_path / "a.o", tmp_path / "b.o"
    a.write_bytes(b"AAA")
    b.write_bytes(b"BBB")
    out = tmp_path / "mod.so"
    cache = tmp_path / "cache"
    cmd = [sys.executable, str(linker), "-shared", "-o", str(out), str(a), str(b)]
    runs = tmp_path / "runs"

    assert link_cache.main(["link_cache.py", str(cache), *cmd]) == 0
    assert out.read_bytes() == b"AAABBB" and runs.read_text() == "1"
    out.unlink()
    assert link_cache.main(["link_cache.py", str(cache), *cmd]) == 0
    assert out.read_bytes() == b"AAABBB" and runs.read_text() == "1"   # reused, not linked

    b.write_bytes(b"BBC")                                                 # an object changed
    assert link_cache.main(["link_cache.py", str(cache), *cmd]) == 0
    assert out.read_bytes() == b"AAABBC" and runs.read_text() == "2"
    flags = cmd[:2] + ["-O2"] + cmd[2:]                                   # the command changed
    assert link_cache.main(["link_cache.py", str(cache), *flags]) == 0
    assert runs.read_text() == "3"
    assert len(list(cache.iterdir())) <= link_cache.KEEP


def test_a_failed_link_is_not_cached(link_cache, tmp_path):
    out = tmp_path / "mod.so"
    cmd = [sys.executable, "-c", "import sys; sys.exit(3)", "-o", str(out)]
    assert link_cache.main(["link_cache.py", str(tmp_path / "cache"), *cmd]) == 3
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())
