"""MicroPython support: build MicroPython's ports from a pinned source tree (unix, qemu) into the
cache, run its qemu boards, and deploy a ``squeezeedge build --micropython`` folder to a board with
mpremote. The source pin lives in ``source``; builds in ``ports``; the deploy in ``deploy``."""
