"""The one record every part of the data pipeline passes around."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Span:
    """A slot mention: ``text[start:end]`` means ``slot`` with Home Assistant value ``value``.

    Offsets are Python ``str`` indices into :attr:`Example.text`. ``value`` is what Home
    Assistant expects for the slot (``"garage"`` for the words "garage doors", ``"50"`` for
    "50%"), always a string; for free text (names, areas, items) it is the mentioned text.
    """

    start: int
    end: int
    slot: str
    value: str


@dataclass(frozen=True)
class Example:
    """One sentence with its meaning.

    ``intent`` is a Home Assistant intent name (``"HassTurnOn"``) or ``None`` for a sentence
    that is not a home command. ``template`` identifies the template the sentence came from
    (``""`` for hand-written sentences) so that splits can keep templates apart. ``source``
    says how it was made: ``"template"``, ``"augment:<kind>"``, ``"oos"``, ``"paraphrase"``.
    """

    text: str
    intent: str | None
    spans: tuple[Span, ...] = ()
    template: str = ""
    source: str = "template"

    @property
    def slots(self) -> dict[str, str]:
        """Slot name → value, first mention wins (the decoder's rule too)."""
        out: dict[str, str] = {}
        for span in sorted(self.spans, key=lambda s: s.start):
            out.setdefault(span.slot, span.value)
        return out

    def check(self) -> None:
        """Raise ``ValueError`` if a span does not lie inside the text or spans overlap."""
        last_end = 0
        for span in sorted(self.spans, key=lambda s: s.start):
            if not (0 <= span.start < span.end <= len(self.text)):
                raise ValueError(f"span {span} outside {self.text!r}")
            if span.start < last_end:
                raise ValueError(f"overlapping spans in {self.text!r}: {self.spans}")
            if self.text[span.start:span.end] != self.text[span.start:span.end].strip():
                raise ValueError(f"span {span} of {self.text!r} has surrounding whitespace")
            last_end = span.end
