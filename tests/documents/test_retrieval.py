"""BM25 and hybrid retrieval: the hybrid finds a passage by meaning when it shares no word with
the question, and ranks first what both methods find."""

from __future__ import annotations

from pathlib import Path

import pytest

from conclave.consensus.citations import Passage
from conclave.documents import add_documents, search_passages
from conclave.documents.index import Library, ScoredPassage
from conclave.documents.retrieval import fuse_rankings, query_words
from conclave.errors import ConfigError

FACTS = {
    "bread.txt": "Sourdough rises with wild yeast and lactic bacteria over twelve hours.",
    "bees.txt": "A honey bee colony keeps one queen, who lays up to two thousand eggs a day.",
    "tides.txt": "Spring tides happen twice a month, when the sun and the moon are in line.",
    "trains.txt": "The night train to Inverness leaves London Euston at nine in the evening.",
}
PARAPHRASE = "fermented loaf leavening"
"""About the bread passage, with none of its words."""


def write_facts(folder: Path) -> Path:
    folder.mkdir()
    for name, text in FACTS.items():
        (folder / name).write_text(text, "utf-8")
    return folder


def test_the_question_words_leave_out_stop_words() -> None:
    assert query_words("What is the capital of Peru? The CAPITAL!") == ["capital", "peru"]


def test_bm25_misses_a_paraphrase_the_hybrid_finds(library: Library, tmp_path: Path) -> None:
    add_documents(library, "facts", [write_facts(tmp_path / "facts")], embeddings=True)
    index = library.open("facts")
    assert index.info().embeddings
    assert search_passages(index, PARAPHRASE, limit=2) == []
    hybrid = search_passages(index, PARAPHRASE, limit=2, mode="hybrid")
    assert hybrid[0].passage.path.endswith("bread.txt")
    both = search_passages(index, "When does the night train to Inverness leave?", limit=4,
                           mode="hybrid")  # fmt: skip
    assert both[0].passage.path.endswith("trains.txt")


def test_hybrid_needs_a_collection_with_embeddings(library: Library, tmp_path: Path) -> None:
    add_documents(library, "facts", [write_facts(tmp_path / "facts")])
    with pytest.raises(ConfigError, match="indexed without embeddings"):
        search_passages(library.open("facts"), PARAPHRASE, limit=2, mode="hybrid")
    with pytest.raises(ConfigError, match="made without embeddings"):
        add_documents(library, "facts", [tmp_path / "facts"], embeddings=True)


def _hit(name: str, score: float = 1.0) -> ScoredPassage:
    passage = Passage(id=name, path=f"/{name}", start=0, end=1, title=name, text=name)
    return ScoredPassage(passage=passage, score=score)


def test_rank_fusion_puts_first_what_both_rankings_hold() -> None:
    by_text = [_hit("a"), _hit("b"), _hit("c")]
    by_meaning = [_hit("d"), _hit("c"), _hit("e")]
    fused = fuse_rankings([by_text, by_meaning], limit=3)
    assert [hit.passage.id for hit in fused] == ["c", "a", "d"]
