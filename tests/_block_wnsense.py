"""Dask worker preload for tests/test_distributed.py: makes ``wnsense_native`` unimportable in
that worker (a worker without the package)."""
import sys


class _Block:
    def find_spec(self, name, path=None, target=None):
        if name == "wnsense_native" or name.startswith("wnsense_native."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test preload)")
        return None


sys.meta_path.insert(0, _Block())
