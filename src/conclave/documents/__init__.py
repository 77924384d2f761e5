"""The user's documents: parsed into passages, indexed in named collections, searched.

```python
from pathlib import Path
from conclave.documents import add_documents, open_library, search_passages

library = open_library()
add_documents(library, "manual", [Path("docs/")])
for hit in search_passages(library.open("manual"), "How do I reset the device?", limit=5):
    print(hit.passage.title, hit.passage.uri)
```
"""

from conclave.config import DocumentsOptions, RetrievalMode
from conclave.consensus.citations import Passage
from conclave.documents import extension  # noqa: F401  (registers the grounding steps)
from conclave.documents.index import (
    CollectionInfo,
    IndexedFile,
    Library,
    PassageIndex,
    ScoredPassage,
)
from conclave.documents.indexing import AddReport, add_documents, find_documents, remove_documents
from conclave.documents.library import open_library
from conclave.documents.parsing import ParsedDocument, parse_file
from conclave.documents.passages import split_passages
from conclave.documents.retrieval import search_passages

__all__ = [
    "AddReport",
    "CollectionInfo",
    "DocumentsOptions",
    "IndexedFile",
    "Library",
    "ParsedDocument",
    "Passage",
    "PassageIndex",
    "RetrievalMode",
    "ScoredPassage",
    "add_documents",
    "find_documents",
    "open_library",
    "parse_file",
    "remove_documents",
    "search_passages",
    "split_passages",
]
