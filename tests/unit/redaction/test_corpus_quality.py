"""Precision and recall per kind on the labelled transcript corpus (``pytest -s`` prints the table).

Exact: a predicted span counts only if kind, start and end all match a labelled one.
Overlap: a prediction counts if it overlaps a labelled span of the same kind, and a labelled
span is recalled if a prediction of its kind overlaps it.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from keysvc.tokens.redaction import KINDS, find_spans

DATA = Path(__file__).parents[2] / "data" / "transcripts"
CORPUS = DATA / "corpus.jsonl"
Triple = tuple[str, int, int]

# Card numbers and SSNs must be both precise and complete; the other kinds depend on context
# words or on libphonenumber, so their floors are lower.
FLOORS = {
    "pan": (0.98, 0.95),
    "ssn": (0.98, 0.95),
    "cvv": (0.90, 0.90),
    "expiry": (0.90, 0.90),
    "phone": (0.90, 0.90),
    "email": (0.90, 0.90),
}


@dataclass(frozen=True)
class Score:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def load() -> list[dict[str, object]]:
    with CORPUS.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def labelled(record: dict[str, object]) -> set[Triple]:
    spans = record["spans"]
    assert isinstance(spans, list)
    return {(s["kind"], s["start"], s["end"]) for s in spans}


def overlaps(a: Triple, b: Triple) -> bool:
    return a[0] == b[0] and a[1] < b[2] and b[1] < a[2]


@pytest.fixture(scope="module")
def results() -> list[tuple[dict[str, object], set[Triple], set[Triple]]]:
    out = []
    for record in load():
        text = record["text"]
        assert isinstance(text, str)
        predicted: set[Triple] = {(s.kind, s.start, s.end) for s in find_spans(text)}
        out.append((record, labelled(record), predicted))
    return out


def scores(
    results: list[tuple[dict[str, object], set[Triple], set[Triple]]],
) -> dict[str, tuple[Score, Score]]:
    exact: Counter[tuple[str, str]] = Counter()
    loose: Counter[tuple[str, str]] = Counter()
    for _, gold, predicted in results:
        for p in predicted:
            exact[(p[0], "tp" if p in gold else "fp")] += 1
            loose[(p[0], "tp" if any(overlaps(p, g) for g in gold) else "fp")] += 1
        for g in gold:
            exact[(g[0], "fn")] += g not in predicted
            loose[(g[0], "fn")] += not any(overlaps(g, p) for p in predicted)
    return {
        kind: (
            Score(exact[(kind, "tp")], exact[(kind, "fp")], exact[(kind, "fn")]),
            Score(loose[(kind, "tp")], loose[(kind, "fp")], loose[(kind, "fn")]),
        )
        for kind in KINDS
    }


def table(by_kind: dict[str, tuple[Score, Score]]) -> str:
    lines = ["kind     labelled  exact P  exact R  overlap P  overlap R"]
    for kind, (exact, loose) in by_kind.items():
        lines.append(
            f"{kind:7}  {exact.tp + exact.fn:8}  {exact.precision:7.3f}  {exact.recall:7.3f}"
            f"  {loose.precision:9.3f}  {loose.recall:9.3f}"
        )
    return "\n".join(lines)


def test_precision_and_recall_per_kind(
    results: list[tuple[dict[str, object], set[Triple], set[Triple]]],
) -> None:
    by_kind = scores(results)
    report = table(by_kind)
    print(f"\nredaction corpus: {len(results)} utterances\n{report}")
    failing = [
        kind
        for kind, (exact, _) in by_kind.items()
        if exact.precision < FLOORS[kind][0] or exact.recall < FLOORS[kind][1]
    ]
    assert not failing, f"below floor: {failing}\n{report}"


def test_hard_negatives_stay_untouched(
    results: list[tuple[dict[str, object], set[Triple], set[Triple]]],
) -> None:
    negatives = [(r, p) for r, _, p in results if str(r["category"]).startswith("neg_") and not r["spans"]]
    touched = [str(r["category"]) for r, p in negatives if p]
    assert len(negatives) >= 100
    assert len(touched) <= len(negatives) * 0.02, f"redacted hard negatives: {Counter(touched)}"


def test_corpus_size_and_coverage() -> None:
    records = load()
    categories = Counter(str(r["category"]) for r in records)
    kinds = Counter(s[0] for r in records for s in labelled(r))
    assert len(records) >= 300
    assert all(kinds[k] >= 30 for k in KINDS), kinds
    for family in ("pan_spoken", "pan_double_triple", "pan_mixed", "pan_fillers", "pan_readback", "card_full",
                   "ssn_dash", "ssn_spoken", "phone_us_written", "phone_us_spoken", "phone_intl",
                   "email_written", "email_spoken", "neg_order_ids", "neg_non_luhn", "neg_dates",
                   "neg_amounts", "neg_times", "neg_zip_address"):  # fmt: skip
        assert categories[family] >= 5, family


def test_labels_point_into_the_text() -> None:
    for record in load():
        text = str(record["text"])
        spans = sorted(labelled(record), key=lambda s: s[1])
        assert all(0 <= a < b <= len(text) and text[a:b].strip() == text[a:b] for _, a, b in spans)
        assert all(x[2] <= y[1] for x, y in itertools.pairwise(spans))


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("transcripts_generate", DATA / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_corpus_is_what_the_generator_makes() -> None:
    assert generator().generate() == load(), "corpus.jsonl is stale: run tests/data/transcripts/generate.py"
