"""Model shapes and the named size presets users choose from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a SqueezeBERT. ``hidden`` must be a power of two (integer LayerNorm divides by
    shifting) and divisible by ``heads`` and ``groups``; ``ffn`` by ``groups``."""

    vocab_size: int = 1024
    max_len: int = 32
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    ffn: int = 256
    groups: int = 4  # SqueezeBERT: Q, K, V and both FFN convolutions; the projection uses 1

    def __post_init__(self) -> None:
        h = self.hidden
        if h & (h - 1) or h < 8:
            raise ValueError(f"hidden={h} must be a power of two >= 8")
        if h % self.heads or h % self.groups or self.ffn % self.groups:
            raise ValueError("hidden must divide by heads and groups, ffn by groups")
        if not 2 <= self.max_len <= 128:
            raise ValueError("max_len must be in [2, 128]")

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class Preset:
    name: str
    config: ModelConfig
    epochs: int
    description: str


PRESETS = {
    p.name: p
    for p in (
        Preset("tiny", ModelConfig(vocab_size=768, hidden=32, layers=1, heads=2, ffn=128), 12,
               "smallest: one layer, for the tightest flash budgets"),
        Preset("small", ModelConfig(vocab_size=1024, hidden=64, layers=2, heads=4, ffn=256), 12,
               "the default: best accuracy under 128 KB"),
        Preset("base", ModelConfig(vocab_size=1536, hidden=128, layers=2, heads=4, ffn=512), 10,
               "largest: for boards with 512 KB of flash or more"),
    )
}
DEFAULT_PRESET = "small"
