"""Linker launcher: reuse the previous link output when the link's inputs are byte-identical.

usage (CMake's CXX_LINKER_LAUNCHER): python link_cache.py CACHE_DIR <link command ...>

The extension is linked with link-time optimization, so its link does the code generation of
every source (about 20 s of CPU). Objects restored by ccache are byte-identical to the previous
build's, and so is the link of them: the output is kept in CACHE_DIR under a hash of the command
line, the compiler binary and the contents of every input file, and copied back on a match.
"""
import hashlib
import os
import shutil
import subprocess
import sys

KEEP = 3  # cached outputs kept (the newest)


def link_key(cmd, out):
    h = hashlib.sha256()
    compiler = shutil.which(cmd[0]) or cmd[0]
    try:
        st = os.stat(os.path.realpath(compiler))
        h.update(f"{os.path.realpath(compiler)}:{st.st_size}:{st.st_mtime_ns}".encode())
    except OSError:
        return None
    for arg in cmd:
        h.update(b"<out>" if arg == out else arg.encode())
        h.update(b"\0")
        if arg != out and os.path.isfile(arg):
            with open(arg, "rb") as fh:
                h.update(hashlib.sha256(fh.read()).digest())
    return h.hexdigest()[:32]


def main(argv):
    cache_dir, cmd = argv[1], argv[2:]
    out = cmd[cmd.index("-o") + 1] if "-o" in cmd[:-1] else None
    key = link_key(cmd, out) if out else None
    cached = os.path.join(cache_dir, key) if key else None
    if cached and os.path.isfile(cached):
        shutil.copyfile(cached, out)
        print(f"wnsense_native: link inputs unchanged, reused the previous link ({key})")
        return 0
    rc = subprocess.call(cmd)
    if rc == 0 and cached:
        try:
            os.makedirs(cache_dir, exist_ok=True)
            shutil.copyfile(out, cached + ".tmp")
            os.replace(cached + ".tmp", cached)
            old = sorted((os.path.join(cache_dir, f) for f in os.listdir(cache_dir)),
                         key=os.path.getmtime)[:-KEEP]
            for f in old:
                os.remove(f)
        except OSError:
            pass  # a cache that cannot be written only costs the next link
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
