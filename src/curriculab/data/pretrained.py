"""An existing tokenizer instead of one trained per study (study key `tokenizer.pretrained`).

Studies that compare with published numbers, or with each other, use the same tokenizer as the
models they compare with (GPT-2, Llama, OLMo/NeoX). `tokenizer.pretrained` names one of:

- a local `tokenizer.json` (the Hugging Face `tokenizers` format), loaded by `tokenizers` itself;
- a local directory saved by `transformers` (`tokenizer.json`, or the files its tokenizer class
  reads, with `tokenizer_config.json`), loaded by `AutoTokenizer`;
- a Hugging Face hub name (`gpt2`, `EleutherAI/gpt-neox-20b`), loaded by `AutoTokenizer` where
  the hub or its local cache is reachable; offline and not cached, a one-line error says how to
  get the file.

Whatever the source, rule tokenizer writes the study's `results/tokenizer/tokenizer.json` in the
`tokenizers` format and, beside it, `tokenizer_info.json`: where it came from and which token
separates packed documents. That token is the tokenizer's own (its `eos_token`, or the first of
END_TOKENS it has), or the one `tokenizer.end_of_document` names; a tokenizer with none is an
error. Documents are encoded without the tokenizer's own special tokens (no [CLS]/[SEP] pairs,
no BOS per document): the end-of-document token is the only one packing adds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from curriculab.errors import ConfigError
from curriculab.io import atomic_path, sha256_file, write_json

# End-of-document tokens of common tokenizer families, in the order they are looked for.
END_TOKENS = ("<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>", "<|eot_id|>")
INFO = "tokenizer_info.json"  # beside tokenizer.json
KEY = "config key 'tokenizer.pretrained'"


@dataclass(frozen=True)
class Pretrained:
    """A loaded pretrained tokenizer: the `tokenizers` object and its end-of-document token."""

    tokenizer: Tokenizer
    end_of_document: str
    source: str  # "file", "directory" or "hub"


def _is_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).expanduser().exists()


def _from_transformers(name: str, source: str) -> tuple[Tokenizer, str | None]:
    """A fast tokenizer through AutoTokenizer (a local directory or a hub name)."""
    try:
        from transformers import AutoTokenizer

        loaded = AutoTokenizer.from_pretrained(name, use_fast=True)
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if source == "hub":
            raise ConfigError(
                f"{KEY}: cannot load {name!r} from the Hugging Face hub or its cache "
                f"({type(error).__name__}: {first[:200]}); offline, download it where the hub is "
                f"reachable (huggingface-cli download {name} tokenizer.json) and name the file"
            ) from None
        raise ConfigError(
            f"{KEY}: {name!r} is not a tokenizer directory ({type(error).__name__}: {first[:200]})"
        ) from None
    if not getattr(loaded, "is_fast", False):
        raise ConfigError(f"{KEY}: {name!r} has no fast (tokenizers) version")
    return loaded.backend_tokenizer, loaded.eos_token


def load_pretrained(name: str, end_of_document: str | None = None) -> Pretrained:
    """Load `name` (a tokenizer.json, a directory or a hub name) and find its end-of-document
    token; a ConfigError of one line naming the key when either cannot be done."""
    eos: str | None = None
    if _is_local(name):
        path = Path(name).expanduser()
        if path.is_dir() and not (path / "tokenizer_config.json").exists():
            path = path / "tokenizer.json"  # a directory with only the tokenizers file
        if path.is_file():
            try:
                tokenizer = Tokenizer.from_file(str(path))
            except Exception as error:
                reason = (str(error).splitlines() or [""])[0][:160]
                raise ConfigError(
                    f"{KEY}: {str(path)!r} is not a tokenizers tokenizer.json "
                    f"({type(error).__name__}: {reason})"
                ) from None
            source = "file"
        elif path.is_dir():
            tokenizer, eos = _from_transformers(str(path), "directory")
            source = "directory"
        else:
            raise ConfigError(f"{KEY}: {name!r} does not exist (a file or a directory expected)")
    else:
        tokenizer, eos = _from_transformers(name, "hub")
        source = "hub"
    vocab = tokenizer.get_vocab(with_added_tokens=True)
    if end_of_document is not None:
        if end_of_document not in vocab:
            raise ConfigError(
                f"config key 'tokenizer.end_of_document': {end_of_document!r} is not a token of "
                f"{name!r}"
            )
        return Pretrained(tokenizer, end_of_document, source)
    found = [eos] if eos and eos in vocab else [t for t in END_TOKENS if t in vocab]
    if not found:
        raise ConfigError(
            f"{KEY}: {name!r} has no end-of-document token (none of {list(END_TOKENS)}); name "
            "one of its tokens with tokenizer.end_of_document"
        )
    return Pretrained(tokenizer, found[0], source)


def write_pretrained(
    name: str, end_of_document: str | None, out_path: str | Path
) -> dict[str, Any]:
    """Rule tokenizer's body for a pretrained tokenizer: tokenizer.json and its info, each
    written to a temporary name first."""
    loaded = load_pretrained(name, end_of_document)
    with atomic_path(out_path) as tmp:
        loaded.tokenizer.save(str(tmp))
    origin = {"pretrained": name, "from": loaded.source}
    return write_info(out_path, loaded.tokenizer, loaded.end_of_document, origin)


def write_info(
    tokenizer_path: str | Path, tokenizer: Tokenizer, end_of_document: str, origin: dict[str, Any]
) -> dict:
    """Write `tokenizer_info.json` beside `tokenizer`, saved at `tokenizer_path`; return it."""
    info = {
        **origin,
        "end_of_document": end_of_document,
        "end_of_document_id": tokenizer.token_to_id(end_of_document),
        "vocab_size": tokenizer.get_vocab_size(),
        "tokenizer_sha256": sha256_file(tokenizer_path),
    }
    write_json(Path(tokenizer_path).with_name(INFO), info)
    return info


def end_of_document_token(tokenizer_path: str | Path, default: str) -> str:
    """The end-of-document token recorded beside `tokenizer_path` (`default` where no info
    file is: a tokenizer trained by this package before the info file existed)."""
    info = Path(tokenizer_path).with_name(INFO)
    if not info.is_file():
        return default
    return json.loads(info.read_text(encoding="utf-8"))["end_of_document"]


# The vocabulary that plans and resource estimates assume for a hub tokenizer not in the local
# cache (the job loads the real one): the published size of common ones, else Llama 3's, the
# largest common one.
HUB_VOCAB_ESTIMATE = 128_256
KNOWN_HUB_VOCABS = {
    "gpt2": 50_257,
    "openai-community/gpt2": 50_257,
    "EleutherAI/gpt-neox-20b": 50_277,
    "EleutherAI/pythia-160m": 50_277,
    "allenai/OLMo-1B-hf": 50_280,
    "meta-llama/Meta-Llama-3-8B": 128_256,
}


@dataclass(frozen=True)
class TokenizerSpec:
    """The study key `tokenizer`: train a byte-level BPE of `vocab_size`, or use `pretrained`."""

    vocab_size: int  # the vocabulary the model is sized for (a pretrained one's own)
    pretrained: str | None = None
    end_of_document: str | None = None  # pretrained: its end-of-document token, if named

    def params(self) -> dict[str, Any]:
        return {
            "vocab_size": self.vocab_size,
            "pretrained": self.pretrained,
            "end_of_document": self.end_of_document,
        }


def _cached_hub_file(name: str) -> str | None:
    """The hub tokenizer's tokenizer.json from the local Hugging Face cache, or None (no
    network is used)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(name, "tokenizer.json")
    except Exception:  # a malformed repo id: left to the job's one-line error
        return None
    return found if isinstance(found, str) else None


def check_tokenizer(key: dict[str, Any]) -> TokenizerSpec:
    """The `tokenizer` key checked at config time: exactly one of vocab_size and pretrained; a
    local pretrained tokenizer (or one in the hub cache) is loaded now, so a file that is not a
    tokenizer, or one without an end-of-document token, fails before any job."""
    pretrained, vocab_size = key.get("pretrained"), key.get("vocab_size")
    end_of_document = key.get("end_of_document")
    if (pretrained is None) == (vocab_size is None):
        raise ConfigError(
            "config key 'tokenizer': give either vocab_size (train a byte-level BPE) or "
            "pretrained (an existing tokenizer), not both or neither"
        )
    if pretrained is None:
        if end_of_document is not None:
            raise ConfigError(
                "config key 'tokenizer.end_of_document': only with tokenizer.pretrained (a "
                "trained tokenizer's is <|endoftext|>)"
            )
        return TokenizerSpec(int(vocab_size))
    local = pretrained if _is_local(pretrained) else _cached_hub_file(pretrained)
    if local is None:
        vocab = KNOWN_HUB_VOCABS.get(pretrained, HUB_VOCAB_ESTIMATE)
        return TokenizerSpec(vocab, pretrained, end_of_document)
    loaded = load_pretrained(local, end_of_document)
    return TokenizerSpec(loaded.tokenizer.get_vocab_size(), pretrained, end_of_document)


def pretrained_inputs(pretrained: str | None) -> list[str]:
    """The local files a pretrained tokenizer is read from (the rule's inputs): none for a
    trained tokenizer or a hub name."""
    if pretrained is None or not _is_local(pretrained):
        return []
    path = Path(pretrained).expanduser()
    return (
        [str(p) for p in sorted(path.rglob("*")) if p.is_file()] if path.is_dir() else [str(path)]
    )
