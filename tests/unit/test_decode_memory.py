"""What large decodes give back: on glibc, the memory a large image took is handed back to the
operating system once it is decoded (the figures are in bench/README.md, `--decodes`)."""

from __future__ import annotations

import platform

import pytest

from storyframe.services.decoding import malloc_trim


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_the_c_library_can_hand_freed_memory_back_on_glibc() -> None:
    trim = malloc_trim()

    assert trim is not None
    assert trim(0) in {0, 1}  # 1: memory was handed back, 0: there was none to hand
