"""Classification engines behind one interface: text bytes in, Answer out."""

from __future__ import annotations

from pathlib import Path

from . import reference
from .decode import Answer, decode
from .model_file import IntModel
from .tokenizer import WordPieceTokenizer

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
DEFAULT_MODEL = PRETRAINED_DIR / "default.semodel"


def tokenizer_for(model: IntModel) -> WordPieceTokenizer:
    return WordPieceTokenizer(model.vocab, model.config.max_len)


class ReferenceEngine:
    """The integer reference interpreter (numpy): slow, exact, the definition of the answer."""

    name = "reference"

    def __init__(self, model: IntModel):
        self.model = model
        self.tokenizer = tokenizer_for(model)

    def classify(self, data: bytes) -> Answer:
        enc = self.tokenizer.encode(data)
        return decode(self.model, data, enc.ids, enc.offsets, reference.run(self.model, enc.ids))
