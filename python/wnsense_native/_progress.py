"""The optional progress bar of long work (solver iterations, a regularization path)."""
from __future__ import annotations

import logging

logger = logging.getLogger("wnsense_native")


def progress_bar(enabled: bool, total: int, unit: str):
    """A tqdm bar of ``total`` steps, or None when ``enabled`` is false or tqdm is missing (then
    a warning names the extra that brings it)."""
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        logger.warning("progress=True needs tqdm (pip install wnsense_native[progress])")
        return None
    return tqdm(total=total, unit=unit, leave=False)
