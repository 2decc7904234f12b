"""The int8 model file (``.semodel``): one numpy ``.npz`` archive, described in FORMAT.md.

Arrays hold the integers; the JSON entry ``meta.json`` holds the configuration, vocabulary,
labels, slot value table and, for information only, the float scales they came from.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import ModelConfig

FORMAT_NAME = "squeezeedge-int8"
FORMAT_VERSION = 1
META_KEY = "meta.json"

# name pattern → dtype every array of that kind must have
_DTYPES = {
    ".w": np.int8, ".b": np.int32, ".m": np.int32, ".n": np.int8, ".k": np.int32,
    ".g": np.int32, ".lut": np.int8, "embed.token": np.int8, "embed.position": np.int8,
    "exp_table": np.uint16,
}


class ModelFileError(ValueError):
    """The file is not a SqueezeEdge int8 model this version can read."""


@dataclass
class IntModel:
    """An int8 SqueezeBERT: everything the reference interpreter and the compiler read."""

    config: ModelConfig
    vocab: list[str]
    intents: list[str | None]  # index 0 is None: out of scope
    slots: list[str]  # tag 0 = O, tag 2i+1 = B-slots[i], tag 2i+2 = I-slots[i]
    arrays: dict[str, np.ndarray]
    oos_threshold: int  # confidence (0..CONF_ONE) below which the answer is "no intent"
    value_table: dict[str, dict[str, str]] = field(default_factory=dict)
    # intent → the slots it takes; a word can only be tagged with those (none listed: all)
    intent_slots: dict[str, list[str]] = field(default_factory=dict)
    info: dict = field(default_factory=dict)  # preset, scales, metrics: informational
    # the threshold of a device told no home names (None: oos_threshold). A model trained with
    # names is surer of itself when it sees placeholders, so each case gets its own.
    oos_threshold_without_names: int | None = None
    language: str = "en"  # the language of the sentences it was trained on (Home Assistant's code)

    def threshold(self, names_told: bool) -> int:
        """The out-of-scope threshold of a device that was (or was not) told home names."""
        if names_told or self.oos_threshold_without_names is None:
            return self.oos_threshold
        return self.oos_threshold_without_names

    @property
    def tags(self) -> list[str]:
        return ["O"] + [f"{p}-{s}" for s in self.slots for p in ("B", "I")]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def allowed_tags(self, intent: str) -> list[int]:
        """Tags a word may take in a sentence of ``intent``: O and B/I of its slots."""
        slots = self.intent_slots.get(intent)
        if slots is None:
            return list(range(len(self.tags)))
        indices = sorted(self.slots.index(s) for s in slots)
        return [0] + [t for i in indices for t in (2 * i + 1, 2 * i + 2)]

    def weight_bytes(self) -> int:
        """Bytes of all integer arrays (weights, biases, multipliers, tables)."""
        return int(sum(a.nbytes for a in self.arrays.values()))

    def vocab_bytes(self) -> int:
        """Bytes of the vocabulary as the device stores it (NUL-terminated strings)."""
        return sum(len(p.encode()) + 1 for p in self.vocab)

    def parameter_count(self) -> int:
        return int(sum(a.size for k, a in self.arrays.items() if k.endswith(".w") or k.startswith("embed.t")
                       or k.startswith("embed.p")))

    def save(self, path: str | Path) -> None:
        meta = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "config": self.config.to_dict(),
            "vocab": self.vocab,
            "intents": self.intents,
            "slots": self.slots,
            "oos_threshold": self.oos_threshold,
            "oos_threshold_without_names": self.oos_threshold_without_names,
            "language": self.language,
            "value_table": self.value_table,
            "intent_slots": self.intent_slots,
            "info": self.info,
        }
        buf = io.BytesIO()
        np.savez_compressed(buf, **{META_KEY: np.frombuffer(json.dumps(meta).encode(), np.uint8)},
                            **self.arrays)
        Path(path).write_bytes(buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> "IntModel":
        path = Path(path)
        if not path.is_file():
            raise ModelFileError(f"{path}: no such model file")

        def not_a_model(why: str) -> ModelFileError:
            return ModelFileError(f"{path} is not a SqueezeEdge model file ({why}; a .semodel is a numpy .npz "
                                  f"archive with a {META_KEY} entry: models/FORMAT.md)")

        # Checked before numpy reads it: np.load takes any other file for a pickle and says so.
        if not zipfile.is_zipfile(path):
            raise not_a_model("not a zip archive")
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (zipfile.BadZipFile, ValueError, OSError, EOFError):
            raise not_a_model("a zip archive whose entries are not plain numpy arrays") from None
        if META_KEY not in arrays:
            raise not_a_model(f"an archive of {len(arrays)} arrays without {META_KEY}")
        try:
            meta = json.loads(arrays.pop(META_KEY).tobytes())
        except (ValueError, UnicodeDecodeError):
            raise not_a_model(f"its {META_KEY} is not JSON") from None
        if not isinstance(meta, dict):
            raise not_a_model(f"its {META_KEY} is not a JSON object")
        if meta.get("format") != FORMAT_NAME:
            raise ModelFileError(f"{path}: format {meta.get('format')!r}, expected {FORMAT_NAME!r}")
        if meta.get("version") != FORMAT_VERSION:
            raise ModelFileError(f"{path}: format version {meta.get('version')}, this tool reads "
                                 f"{FORMAT_VERSION}; re-export the model with this version")
        model = cls(
            config=ModelConfig.from_dict(meta["config"]),
            vocab=meta["vocab"],
            intents=meta["intents"],
            slots=meta["slots"],
            arrays=arrays,
            oos_threshold=int(meta["oos_threshold"]),
            value_table=meta.get("value_table", {}),
            intent_slots=meta.get("intent_slots", {}),
            info=meta.get("info", {}),
            oos_threshold_without_names=(None if meta.get("oos_threshold_without_names") is None
                                         else int(meta["oos_threshold_without_names"])),
            language=str(meta.get("language", "en")),
        )
        model.validate(str(path))
        return model

    def validate(self, where: str = "model") -> None:
        """Check the invariants the interpreter and the compiler rely on."""
        cfg = self.config
        if len(self.vocab) != cfg.vocab_size:
            raise ModelFileError(f"{where}: {len(self.vocab)} vocabulary entries, config says {cfg.vocab_size}")
        if not self.intents or self.intents[0] is not None:
            raise ModelFileError(f"{where}: intents[0] must be null (out of scope)")
        for name, arr in self.arrays.items():
            for suffix, dtype in _DTYPES.items():
                if (name.endswith(suffix) or name == suffix) and arr.dtype != dtype:
                    raise ModelFileError(f"{where}: {name} has dtype {arr.dtype}, expected {np.dtype(dtype)}")
        expected = {"embed.token": (cfg.vocab_size, cfg.hidden), "embed.position": (cfg.max_len, cfg.hidden),
                    "head.intent.w": (len(self.intents), cfg.hidden),
                    "head.slot.w": (len(self.tags), cfg.hidden)}
        for name, shape in expected.items():
            if name not in self.arrays:
                raise ModelFileError(f"{where}: missing array {name}")
            if self.arrays[name].shape != shape:
                raise ModelFileError(f"{where}: {name} has shape {self.arrays[name].shape}, expected {shape}")
        for i in range(cfg.layers):
            for part in ("q", "k", "v", "o", "ffn1", "ffn2"):
                if f"layer{i}.{part}.w" not in self.arrays:
                    raise ModelFileError(f"{where}: missing array layer{i}.{part}.w")
