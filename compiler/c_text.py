"""C source text for constant tables: model.c's weights (package.py) and model_meta.c's
tokenizer and label tables (meta.py) are written by the same function, so both files format
their arrays alike."""

from __future__ import annotations

import numpy as np

C_TYPES = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "uint16": "uint16_t",
           "int32": "int32_t", "uint32": "uint32_t", "int64": "int64_t"}


def c_type(dtype) -> str:
    """The <stdint.h> type of a numpy dtype (or of an array's)."""
    return C_TYPES[str(getattr(dtype, "dtype", dtype))]


def c_array(ctype: str, name: str, values, per_line: int = 16) -> str:
    """``static const ctype name[N] = {...};`` with ``per_line`` values a row. An empty table
    becomes one zero: C has no zero-length arrays."""
    values = np.asarray(values).reshape(-1).tolist() if isinstance(values, np.ndarray) else list(values)
    if not values:
        values = [0]
    rows = [", ".join(str(int(v)) for v in values[i:i + per_line]) for i in range(0, len(values), per_line)]
    return f"static const {ctype} {name}[{len(values)}] = {{\n  " + ",\n  ".join(rows) + "\n};\n"
