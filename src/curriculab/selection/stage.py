"""The select stage's files: the embeddings of the pool and the target, and each selection as a
derived domain (docs.parquet like prepare's, so rule shards builds it like any other domain),
with every pool document's score and rank and a record of how the set was made."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curriculab.data.shards import encode_documents
from curriculab.data.tokenizer import load_tokenizer
from curriculab.errors import CurriculabError
from curriculab.io import atomic_path, read_arrow, write_arrow, write_json
from curriculab.selection.embed import EmbeddingSpec, embed, normalise
from curriculab.selection.methods import OTSpec, choose, scores, transport_cost
from curriculab.selection.plan import SelectSet


class SelectError(CurriculabError, ValueError):
    """A selection cannot be made as asked (e.g. more documents than the pool holds)."""


def train_rows(docs_path: str | Path) -> pa.Table:
    """The train split of a domain's docs.parquet, in file order."""
    docs = pq.read_table(docs_path)
    return docs.filter(pc.equal(docs["split"], "train"))


def write_embeddings(
    pool_docs: str | Path,
    target_docs: str | Path,
    spec: EmbeddingSpec,
    seed: int,
    out_path: str | Path,
) -> dict[str, Any]:
    """Embed the train documents of the pool and the target; one Arrow file, a row each."""
    pool, target = train_rows(pool_docs), train_rows(target_docs)
    start = time.perf_counter()
    pool_vecs, target_vecs = embed(pool["text"].to_pylist(), target["text"].to_pylist(), spec, seed)
    seconds = time.perf_counter() - start
    dims = pool_vecs.shape[1]
    vectors = np.concatenate([pool_vecs, target_vecs]).astype(np.float32)
    table = pa.table(
        {
            "doc_id": pa.concat_arrays(
                [pool["doc_id"].combine_chunks(), target["doc_id"].combine_chunks()]
            ),
            "side": ["pool"] * len(pool) + ["target"] * len(target),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), dims),
        }
    )
    write_arrow(table, out_path)
    facts = {
        "pool_docs": len(pool),
        "target_docs": len(target),
        "dims": dims,
        "seconds": round(seconds, 2),
        "docs_per_second": round(len(table) / seconds),
    }
    print(f"embedded {facts}", file=sys.stderr)
    return facts


def read_embeddings(path: str | Path) -> dict[str, tuple[list[str], np.ndarray]]:
    """side -> (doc ids, (n, dims) float32 vectors) of an embeddings file."""
    table = read_arrow(path)
    dims = table.schema.field("embedding").type.list_size
    vectors = table["embedding"].combine_chunks().values.to_numpy().reshape(-1, dims)
    side = np.asarray(table["side"].to_pylist())
    ids = np.asarray(table["doc_id"].to_pylist())
    return {s: (ids[side == s].tolist(), vectors[side == s]) for s in ("pool", "target")}


def doc_tokens(texts: list[str], tokenizer_path: str | Path) -> np.ndarray:
    """(n,) tokens each document takes in a shard (the shard packer's own encoding: its ids
    plus the end-of-document token)."""

    tokenizer, eod = load_tokenizer(tokenizer_path)
    pieces = encode_documents(texts, tokenizer, eod=eod)
    return np.array([len(p) for p in pieces], dtype=np.int64)


def _check_size(chosen: SelectSet, n_docs: int, n_tokens: int) -> None:
    key = f"config key 'selection.sets.{chosen.name}"
    if chosen.k is not None and chosen.k > n_docs:
        raise SelectError(
            f"{key}.k': {chosen.k} documents asked, but the pool's train split holds {n_docs}"
        )
    if chosen.tokens is not None and chosen.tokens > n_tokens:
        raise SelectError(
            f"{key}.tokens': {chosen.tokens} tokens asked, but the pool's train "
            f"split holds {n_tokens}"
        )


def run_selection(
    docs_path: str | Path,
    embeddings_path: str | Path,
    tokenizer_path: str | Path,
    chosen: SelectSet,
    ot_spec: OTSpec,
    seed: int,
    out: dict[str, str | Path],
    draw: int | None = None,
) -> dict[str, Any]:
    """Score every pool train document, keep the set `chosen` asks for and write the derived
    domain (out["docs"]), the scores (out["scores"]) and the record (out["record"]). draw: the
    training seed a random set is drawn for (None: not a random draw)."""
    docs = pq.read_table(docs_path)
    pool = docs.filter(pc.equal(docs["split"], "train"))
    vectors = read_embeddings(embeddings_path)
    pool_ids, pool_vecs = vectors["pool"]
    if pool_ids != pool["doc_id"].to_pylist():
        raise SelectError(
            f"{embeddings_path}: its pool documents are not those of {docs_path}; "
            "delete it so that rule selection_embed remakes it"
        )
    target_vecs = vectors["target"][1]
    tokens = doc_tokens(pool["text"].to_pylist(), tokenizer_path)
    _check_size(chosen, len(pool), int(tokens.sum()))
    start = time.perf_counter()
    score, solver = scores(chosen.method, pool_vecs, target_vecs, ot_spec, seed, draw)
    order = np.argsort(score, kind="stable")
    picked = choose(order, tokens, chosen.k, chosen.tokens)
    seconds = time.perf_counter() - start
    rank = np.empty(len(pool), dtype=np.int64)
    rank[order] = np.arange(len(pool))
    keep = np.zeros(len(pool), dtype=bool)
    keep[picked] = True
    is_train = pc.equal(docs["split"], "train").to_numpy(zero_copy_only=False)
    keep_rows = ~is_train  # the pool's test split, as it is
    keep_rows[np.flatnonzero(is_train)[keep]] = True
    with atomic_path(out["docs"]) as tmp:
        pq.write_table(docs.filter(pa.array(keep_rows)), tmp)
    centroid = normalise(target_vecs.mean(axis=0, keepdims=True))[0]
    titles = [t.split("\n", 1)[0][:80] for t in pool["text"].to_pylist()]
    table = pa.table(
        {
            "doc_id": pool["doc_id"],
            "score": score,
            "rank": rank,
            "chosen": keep,
            "tokens": tokens,
            "title": titles,
        }
    )
    with atomic_path(out["scores"]) as tmp:
        pq.write_table(table, tmp)
    record = {
        "set": chosen.name,
        "draw": draw,
        "method": chosen.method,
        "size": chosen.size,
        "k": chosen.k,
        "tokens_asked": chosen.tokens,
        "chosen_docs": int(keep.sum()),
        "chosen_tokens": int(tokens[keep].sum()),
        "pool_docs": len(pool),
        "pool_tokens": int(tokens.sum()),
        "target_docs": len(target_vecs),
        "seconds": round(seconds, 2),
        "solver": solver,
        # How far the chosen set lies from the target (entropic OT cost on the same target
        # sample for every set; the whole pool's is in the summary) and its mean cosine to the
        # centroid.
        "transport_cost": transport_cost(pool_vecs[keep], target_vecs, ot_spec.epsilon, seed),
        "centroid_cosine": float((pool_vecs[keep] @ centroid).mean()),
        "top_titles": [titles[i] for i in order[:10]],
    }
    write_json(out["record"], record)
    print(
        f"selection {chosen.name}: {record['chosen_docs']} of {len(pool)} documents, "
        f"{record['chosen_tokens']} tokens, {seconds:.1f} s",
        file=sys.stderr,
    )
    return record
