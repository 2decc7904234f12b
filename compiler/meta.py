"""Model metadata for the firmware: the tables the device needs besides the network itself.

``write_meta(model, out_dir)`` writes ``model_meta.h`` and ``model_meta.c`` next to a model
package. They define one ``const se_meta_t se_model_meta`` (type in firmware/core/se_meta.h):

* the vocabulary as a lookup table sorted by (continuation flag, piece bytes) for binary search,
  exactly mirroring ``WordPieceTokenizer``'s dict (the last duplicate wins; pieces that can never
  match a byte string are left out), plus one continuation flag per token id;
* intent names (index 0 = out of scope), slot names, the slot value table (sorted per slot);
* ``oos_threshold`` (and the one of a device told no home names), ``head.conf.{m,n}``,
  ``exp_table``, ``max_len``;
* which slots each intent allows (``IntModel.intent_slots``), or NULL when none are listed;
* slot names as Home Assistant spells them plus a negation flag per slot: the label slot
  ``-volume_step`` becomes name ``volume_step`` with ``slot_negated`` 1 (NULL when none is).

Everything is ``static const`` data (flash); no code is generated. With a weights blob
(``compile_model(..., weights="blob")``) the tables are in the blob instead and
``se_model_meta_bind(payload)``, generated, points a RAM ``se_model_meta`` at them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..models.labels import slot_key
from ..models.model_file import IntModel
from ..models.tokenizer import CONTINUATION
from .c_text import c_array, c_type

META_FORMAT_VERSION = 4  # 2: slot_negated; 3: oos_threshold_no_names; 4: flat tables, one string pool


def piece_key(piece: str) -> tuple[int, bytes] | None:
    """(continuation, body bytes) under which the tokenizer can match ``piece``, or None when it
    never can (characters above U+00FF, or an empty body)."""
    cont = piece.startswith(CONTINUATION)
    body = piece[len(CONTINUATION):] if cont else piece
    if not body or any(ord(ch) > 0xFF for ch in body):
        return None
    return int(cont), body.encode("latin-1")


def lookup_entries(vocab: list[str]) -> list[tuple[int, bytes, int]]:
    """Sorted (continuation, body, id); for duplicate keys the highest id wins, as in the
    Python tokenizer's ``{piece: id}`` dict."""
    table: dict[tuple[int, bytes], int] = {}
    for i, piece in enumerate(vocab):
        key = piece_key(piece)
        if key is not None:
            table[key] = i
    return sorted((c, b, i) for (c, b), i in table.items())


def meta_tables(model: IntModel) -> tuple[list[tuple[str, np.ndarray]], dict]:
    """The metadata as flat arrays (name, array), in the order of se_meta_t, and its scalars.
    Names and values are offsets into one pool of NUL-terminated strings (``strings``)."""
    cfg = model.config
    entries = lookup_entries(model.vocab)
    blob = b"".join(b for _, b, _ in entries)
    offsets = [0]
    for _, b, _ in entries:
        offsets.append(offsets[-1] + len(b))
    pool = bytearray()

    def intern(text: bytes) -> int:
        at = len(pool)
        pool.extend(text + b"\0")
        return at

    intent_names = [intern((name or "").encode("utf-8")) for name in model.intents]
    keys = [slot_key(s) for s in model.slots]  # the C side never parses label names
    slot_names = [intern(k.encode("utf-8")) for k, _ in keys]
    negated = [int(sign == "-") for _, sign in keys]
    phrases, texts, value_start = [], [], [0]
    for slot in model.slots:
        for k, v in sorted((k.encode("utf-8"), v.encode("utf-8")) for k, v in model.value_table.get(slot, {}).items()):
            phrases.append(intern(k))
            texts.append(intern(v))
        value_start.append(len(phrases))
    # intent → allowed slots (IntModel.allowed_tags); intents not listed allow every slot
    intent_slots = getattr(model, "intent_slots", None) or {}
    allowed = []
    for intent in model.intents:
        listed = intent_slots.get(intent) if intent is not None else None
        allowed += [1 if listed is None or slot in listed else 0 for slot in model.slots]

    def arr(values, dtype) -> np.ndarray:
        return np.asarray(list(values) or [0], dtype=dtype)

    tables = [
        ("vocab_blob", np.frombuffer(blob or b"\0", dtype=np.uint8)),
        ("vocab_off", arr(offsets, np.uint32)),
        ("vocab_id", arr((i for _, _, i in entries), np.uint16)),
        ("vocab_cont", arr((c for c, _, _ in entries), np.uint8)),
        ("token_cont", arr((int(p.startswith(CONTINUATION)) for p in model.vocab), np.uint8)),
        ("strings", np.frombuffer(bytes(pool), dtype=np.uint8)),
        ("intent_names", arr(intent_names, np.uint32)),
        ("slot_names", arr(slot_names, np.uint32)),
        ("value_phrases", arr(phrases, np.uint32)),
        ("value_texts", arr(texts, np.uint32)),
        ("value_start", arr(value_start, np.uint16)),
        ("exp_table", arr((int(v) for v in model["exp_table"]), np.uint16)),
    ]
    if intent_slots:
        tables.append(("intent_slot_allowed", arr(allowed, np.uint8)))
    if any(negated):
        tables.append(("slot_negated", arr(negated, np.uint8)))
    scalars = {
        "version": META_FORMAT_VERSION, "vocab_size": cfg.vocab_size, "max_len": cfg.max_len,
        "n_lookup": len(entries), "max_piece": max((len(b) for _, b, _ in entries), default=1),
        "n_intents": len(model.intents), "n_slots": len(model.slots),
        "oos_threshold": int(model.oos_threshold), "conf_m": int(model["head.conf.m"][0]),
        "conf_n": int(model["head.conf.n"][0]), "oos_threshold_no_names": int(model.threshold(names_told=False)),
    }
    return tables, scalars


# se_meta_t's fields in order: (field, a table's name or a scalar's key; None: NULL when absent)
_FIELDS = [("version", "version"), ("vocab_size", "vocab_size"), ("max_len", "max_len"),
           ("vocab_blob", "vocab_blob"), ("vocab_off", "vocab_off"), ("vocab_id", "vocab_id"),
           ("vocab_cont", "vocab_cont"), ("n_lookup", "n_lookup"), ("max_piece", "max_piece"),
           ("token_cont", "token_cont"), ("strings", "strings"), ("intent_names", "intent_names"),
           ("n_intents", "n_intents"), ("slot_names", "slot_names"), ("n_slots", "n_slots"),
           ("value_phrases", "value_phrases"), ("value_texts", "value_texts"), ("value_start", "value_start"),
           ("oos_threshold", "oos_threshold"), ("conf_m", "conf_m"), ("conf_n", "conf_n"),
           ("exp_table", "exp_table"), ("intent_slot_allowed", "intent_slot_allowed"),
           ("slot_negated", "slot_negated"), ("oos_threshold_no_names", "oos_threshold_no_names")]


def meta_sources(model: IntModel, blob_offsets: dict[str, int] | None = None) -> tuple[str, str]:
    """(model_meta.h, model_meta.c) text for ``model``. With ``blob_offsets`` (table name → offset
    in a weights blob's payload, compiler/blob.py) the tables are not in the C: the generated
    ``se_model_meta_bind(payload)`` points ``se_model_meta`` at them."""
    cfg = model.config
    tables, scalars = meta_tables(model)
    present = {name: a for name, a in tables}
    in_blob = blob_offsets is not None
    decl = ("extern se_meta_t se_model_meta; /* filled by se_model_meta_bind */\n"
            "/* Points se_model_meta at the tables in a weights blob's payload (se_blob_open's). */\n"
            "void se_model_meta_bind(const uint8_t *payload);\n#define SE_META_IN_BLOB 1"
            if in_blob else "extern const se_meta_t se_model_meta;")
    h = f"""/* SqueezeEdge model metadata: generated by squeezeedge.compiler.meta. Do not edit. */
#ifndef SE_MODEL_META_H
#define SE_MODEL_META_H

#include "se_meta.h"

#define SE_META_VERSION {META_FORMAT_VERSION}
#define SE_META_VOCAB_SIZE {cfg.vocab_size}
#define SE_META_MAX_LEN {cfg.max_len}
#define SE_META_N_INTENTS {len(model.intents)}
#define SE_META_N_SLOTS {len(model.slots)}
#define SE_META_N_TAGS {1 + 2 * len(model.slots)}
#define SE_META_OOS_THRESHOLD {int(model.oos_threshold)}

{decl}

#endif /* SE_MODEL_META_H */
"""
    parts = ["/* SqueezeEdge model metadata: generated by squeezeedge.compiler.meta. Do not edit. */",
             "#include <stdint.h>", "#include <stddef.h>", '#include "model_meta.h"', ""]
    if in_blob:
        parts.append("se_meta_t se_model_meta;\n")
        parts.append("void se_model_meta_bind(const uint8_t *payload) {\n  se_meta_t *m = &se_model_meta;")
        for field, key in _FIELDS:
            if key in scalars:
                parts.append(f"  m->{field} = {scalars[key]};")
            elif key in present:
                ctype = c_type(present[key])
                cast = "const char *" if field == "strings" else f"const {ctype} *"
                parts.append(f"  m->{field} = ({cast})(payload + {blob_offsets[key]});")
            else:
                parts.append(f"  m->{field} = NULL;")
        parts.append("}")
        return h, "\n".join(parts) + "\n"
    for name, a in tables:
        parts.append(c_array(c_type(a), name, a.tolist(), per_line=32 if a.dtype == np.uint8 else 16))
    init = []
    for field, key in _FIELDS:
        if key in scalars:
            init.append(str(scalars[key]))
        elif key in present:
            init.append("(const char *)strings" if field == "strings" else key)
        else:
            init.append("NULL")
    parts.append("const se_meta_t se_model_meta = {\n  " + ",\n  ".join(init) + "\n};\n")
    return h, "\n".join(parts)


def write_meta(model: IntModel, out_dir: str | Path, blob_offsets: dict[str, int] | None = None) -> Path:
    """Write ``model_meta.h`` and ``model_meta.c`` into ``out_dir`` (created if needed);
    ``blob_offsets``: the tables are in the package's weights blob (Package.info["blob"]["meta_offsets"])."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    h, c = meta_sources(model, blob_offsets)
    (out / "model_meta.h").write_text(h)
    (out / "model_meta.c").write_text(c)
    return out
