"""Classification engines behind one interface: text bytes in, Answer out."""

from __future__ import annotations

from ..resources import DEFAULT_MODEL, PRETRAINED_DIR  # noqa: F401 (the models' API: re-exported)
from . import reference
from .decode import Answer, decode
from .gazetteer import Gazetteer, HomeNames
from .model_file import IntModel
from .tokenizer import Encoding, WordPieceTokenizer


def tokenizer_for(model: IntModel) -> WordPieceTokenizer:
    return WordPieceTokenizer(model.vocab, model.config.max_len)


class Encoder:
    """Bytes → the tokens a model sees: WordPiece, then the home's names (if any) as placeholders."""

    def __init__(self, model: IntModel, names: HomeNames | None = None):
        self.tokenizer = tokenizer_for(model)
        self.gazetteer = Gazetteer(self.tokenizer, names) if names else None

    @property
    def names_told(self) -> bool:
        """True when at least one name is known (the device then uses the threshold for names)."""
        return self.gazetteer is not None and len(self.gazetteer) > 0

    def encode(self, data: bytes | str) -> Encoding:
        enc = self.tokenizer.encode(data)
        return self.gazetteer.apply(enc) if self.gazetteer else enc


class ReferenceEngine:
    """The integer reference interpreter (numpy): slow, exact, the definition of the answer."""

    name = "reference"

    def __init__(self, model: IntModel, names: HomeNames | None = None):
        self.model = model
        self.encoder = Encoder(model, names)

    def classify(self, data: bytes) -> Answer:
        enc = self.encoder.encode(data)
        return decode(self.model, data, enc.ids, enc.offsets, reference.run(self.model, enc.ids),
                      self.encoder.names_told)
