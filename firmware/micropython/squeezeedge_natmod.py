# The Python part of the native squeezeedge.mpy, merged into it by the build: runs at import,
# after the C part has defined classify, names_add, names_clear, names, info and load.
# Plain statements only: mpy-tool's merge of a native module mishandles some jumps (generators,
# with-blocks) in the Python part.
# ruff: noqa: F821 - evaluated with the C-defined names in scope

WEIGHTS = "squeezeedge.bin"


def _places():
    # ROMFS first: there the blob stays in flash; then beside the module, then the usual roots.
    here = globals().get("__file__") or ""
    here = here[: here.rfind("/") + 1] if "/" in here else ""
    return ["/rom/" + WEIGHTS, here + WEIGHTS, WEIGHTS, "/flash/" + WEIGHTS, "/" + WEIGHTS]


def _open(path):
    try:
        return open(path, "rb")
    except OSError:
        return None


def _bind(f):
    try:
        data = memoryview(f)  # a ROMFS file: its bytes in place, zero-copy
    except TypeError:
        data = f.read()  # a filesystem file: one copy in the heap
        f.close()
    load(data)


def _load_default():
    for path in _places():
        f = _open(path)
        if f is not None:
            _bind(f)
            return path
    return None


weights_path = _load_default()
