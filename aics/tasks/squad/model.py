"""BERT (Devlin et al., 2019) with a span head for extractive question answering, in one file.

    start_logits, end_logits = model(input_ids, token_type_ids, attention_mask)  # (B, T) ids -> (B, T) each

The module tree, and so every state_dict key, is Hugging Face ``BertForQuestionAnswering``'s
(``bert.embeddings.word_embeddings.weight``, ``bert.encoder.layer.0.attention.self.query.weight``, ...,
``qa_outputs.weight``), so weights move between the two without renaming; there is no pooler and no
persistent buffer. Post-LayerNorm blocks: ``x = LN(x + drop(attn(x)))``, ``x = LN(x + drop(FFN(x)))``.

Speed on CPU (what the bench compares with transformers): a batch without padding runs attention without a
mask, and training draws its dropout masks from 64-bit random words (``_keep_mask``) instead of
``bernoulli_``, which cost more than a layer's attention matmuls; with attention dropout that means writing
the attention out (``attention``), as SDPA would draw it with ``bernoulli_``. On GPU both are SDPA's and
``F.dropout``'s own.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from aics.core.errors import UserError

# Hugging Face's names for the activations we run -> F.gelu's ``approximate``: "gelu" is the exact (erf)
# GELU; "gelu_new" and "gelu_pytorch_tanh" are both the tanh approximation (one written out, one fused).
GELU_APPROXIMATE = {"gelu": "none", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh"}

_REQUIRED = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")


@dataclass
class BertShape:
    """The sizes of a BERT encoder: Hugging Face ``BertConfig``'s field names and defaults."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    hidden_act: str = "gelu"
    pad_token_id: int | None = 0

    @classmethod
    def from_hf_config(cls, d: dict, where: str) -> BertShape:
        """The shape a Hugging Face BERT ``config.json`` (already parsed) describes; ``where`` names the file
        in errors. Keys that do not change the computation (``initializer_range``, ``use_cache``, ...) are
        ignored; keys that would change it to something this model does not compute are refused."""
        if not isinstance(d, dict):
            raise UserError(f"{where}: expected a JSON object, found {type(d).__name__}")
        model_type = d.get("model_type", "bert")
        if model_type != "bert":
            raise UserError(f"{where}: model_type is {model_type!r}, not 'bert'; only BERT models are read")
        for key in _REQUIRED:
            if key not in d:
                raise UserError(
                    f"{where}: missing key '{key}' (a BERT config.json has {', '.join(_REQUIRED)})"
                )
        values = {}
        for f in fields(cls):
            if f.name not in d:
                continue
            v = d[f.name]
            if f.name == "pad_token_id":
                ok = v is None or (isinstance(v, int) and not isinstance(v, bool))
                want = "an integer or null"
            elif f.name == "hidden_act":
                ok, want = isinstance(v, str), "a string"
            elif f.name in ("layer_norm_eps", "hidden_dropout_prob", "attention_probs_dropout_prob"):
                ok, want = isinstance(v, (int, float)) and not isinstance(v, bool), "a number"
            else:
                ok, want = isinstance(v, int) and not isinstance(v, bool), "an integer"
            if not ok:
                raise UserError(f"{where}: key '{f.name}' must be {want}, found {v!r}")
            values[f.name] = float(v) if want == "a number" else v
        shape = cls(**values)
        for key in (*_REQUIRED, "max_position_embeddings", "type_vocab_size"):
            if getattr(shape, key) < 1:
                raise UserError(f"{where}: key '{key}' must be at least 1, found {getattr(shape, key)}")
        if shape.hidden_size % shape.num_attention_heads:
            raise UserError(
                f"{where}: key 'hidden_size' ({shape.hidden_size}) must be divisible by "
                f"'num_attention_heads' ({shape.num_attention_heads})"
            )
        if shape.hidden_act not in GELU_APPROXIMATE:
            raise UserError(
                f"{where}: key 'hidden_act' is {shape.hidden_act!r}; supported: {', '.join(GELU_APPROXIMATE)}"
            )
        if not shape.layer_norm_eps > 0:
            raise UserError(f"{where}: key 'layer_norm_eps' must be positive, found {shape.layer_norm_eps}")
        for key in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(shape, key) < 1.0:
                raise UserError(f"{where}: key '{key}' must be in [0, 1), found {getattr(shape, key)}")
        if shape.pad_token_id is not None and not 0 <= shape.pad_token_id < shape.vocab_size:
            raise UserError(
                f"{where}: key 'pad_token_id' ({shape.pad_token_id}) is not an id below vocab_size "
                f"({shape.vocab_size})"
            )
        position = d.get("position_embedding_type", "absolute")
        if position != "absolute":
            raise UserError(
                f"{where}: key 'position_embedding_type' is {position!r}; only 'absolute' is supported"
            )
        for key in ("is_decoder", "add_cross_attention"):
            if d.get(key):
                raise UserError(
                    f"{where}: key '{key}' is true; only a bidirectional BERT encoder is supported"
                )
        return shape

    def to_hf_config(self) -> dict:
        """A ``config.json`` for Hugging Face ``BertForQuestionAnswering`` with this shape."""
        return {
            "architectures": ["BertForQuestionAnswering"],
            "model_type": "bert",
            **asdict(self),
            "position_embedding_type": "absolute",
            "initializer_range": 0.02,
            "classifier_dropout": None,
            "is_decoder": False,
            "add_cross_attention": False,
            "dtype": "float32",
        }


def _keep_mask(shape: torch.Size, keep_prob: float) -> torch.Tensor:
    """A boolean tensor of ``shape``, each element True with probability ``keep_prob`` (to 1/32768).

    One 64-bit random word gives four elements 15 random bits each: on CPU that is about five times faster
    than ``bernoulli_``, which draws one random number per element (and costs more than a BERT layer's
    attention matmuls when it draws the attention-probability dropout).
    """
    threshold = round(keep_prob * 32768)
    if threshold >= 32768:  # p below 1/65536 rounds to no dropout (and 32768 does not fit an int16)
        return torch.ones(shape, dtype=torch.bool)
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_()  # uniform in [0, 2**63): 63 random bits
    lanes = words.view(torch.int16)[:n] & 0x7FFF  # (n,) uniform in [0, 32768)
    return (lanes < threshold).view(shape)


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """``F.dropout(x, p, training)``; on CPU with the faster mask above (the same distribution, p rounded
    to a multiple of 1/32768)."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, training=True)
    scale = _keep_mask(x.shape, 1.0 - p).to(x.dtype).mul_(1.0 / (1.0 - p))  # 0 or 1/(1-p)
    return x * scale


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, p: float, training: bool
) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + mask) v with dropout ``p`` on the probabilities (in training).

    q, k, v: (B, h, T, d); mask: (B, 1, 1, T) True = attend, or None. ``F.scaled_dot_product_attention``
    does it, fused, except when training with dropout on CPU: there it falls back to an unfused path that
    draws the dropout with ``bernoulli_`` and checks for fully masked rows, so we write that case out.
    """
    if not training or p == 0.0 or q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p if training else 0.0)
    scores = torch.matmul(q * q.shape[-1] ** -0.5, k.transpose(-2, -1))  # (B, h, T, T)
    if mask is not None:
        # a large negative number rather than -inf, so that a row with no key left gives no NaN
        scores = scores + torch.zeros(mask.shape, dtype=scores.dtype, device=scores.device).masked_fill_(
            ~mask, torch.finfo(scores.dtype).min
        )  # (B, 1, 1, T) broadcast
    probs = scores.softmax(-1)  # (B, h, T, T)
    keep = _keep_mask(probs.shape, 1.0 - p).to(probs.dtype)
    # dropout's 1 / (1 - p) goes onto the output, a T/d times smaller tensor than the probabilities
    return torch.matmul(probs * keep, v) * (1.0 / (1.0 - p))  # (B, h, T, d)


class BertEmbeddings(nn.Module):
    def __init__(self, s: BertShape):
        super().__init__()
        self.word_embeddings = nn.Embedding(s.vocab_size, s.hidden_size)
        self.position_embeddings = nn.Embedding(s.max_position_embeddings, s.hidden_size)
        self.token_type_embeddings = nn.Embedding(s.type_vocab_size, s.hidden_size)
        self.LayerNorm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)
        self.dropout = s.hidden_dropout_prob

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        t = input_ids.shape[1]
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)  # (B, T, C)
        x = x + self.position_embeddings.weight[:t]  # positions 0..T-1: (T, C) broadcast over B
        return dropout(self.LayerNorm(x), self.dropout, self.training)


class BertSelfAttention(nn.Module):
    def __init__(self, s: BertShape):
        super().__init__()
        self.heads, self.dropout = s.num_attention_heads, s.attention_probs_dropout_prob
        self.query = nn.Linear(s.hidden_size, s.hidden_size)
        self.key = nn.Linear(s.hidden_size, s.hidden_size)
        self.value = nn.Linear(s.hidden_size, s.hidden_size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, t, c = x.shape
        # (measured: one fused (3C, C) projection made a CPU training step no faster, so three it is)
        q = self.query(x).view(b, t, self.heads, -1).transpose(1, 2)  # (B, h, T, C/h)
        k = self.key(x).view(b, t, self.heads, -1).transpose(1, 2)  # (B, h, T, C/h)
        v = self.value(x).view(b, t, self.heads, -1).transpose(1, 2)  # (B, h, T, C/h)
        y = attention(q, k, v, mask, self.dropout, self.training)  # (B, h, T, C/h)
        return y.transpose(1, 2).reshape(b, t, c)  # (B, T, C)


class BertSelfOutput(nn.Module):
    def __init__(self, s: BertShape):
        super().__init__()
        self.dense = nn.Linear(s.hidden_size, s.hidden_size)
        self.LayerNorm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)
        self.dropout = s.hidden_dropout_prob

    def forward(self, h: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(dropout(self.dense(h), self.dropout, self.training) + residual)  # (B, T, C)


class BertAttention(nn.Module):
    def __init__(self, s: BertShape):
        super().__init__()
        self.self = BertSelfAttention(s)  # Hugging Face's name: the keys read "attention.self.query"
        self.output = BertSelfOutput(s)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return self.output(self.self(x, mask), x)


class BertIntermediate(nn.Module):
    def __init__(self, s: BertShape):
        super().__init__()
        self.dense = nn.Linear(s.hidden_size, s.intermediate_size)
        self.approximate = GELU_APPROXIMATE[s.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x), approximate=self.approximate)  # (B, T, I)


class BertOutput(nn.Module):
    def __init__(self, s: BertShape):
        super().__init__()
        self.dense = nn.Linear(s.intermediate_size, s.hidden_size)
        self.LayerNorm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)
        self.dropout = s.hidden_dropout_prob

    def forward(self, h: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(dropout(self.dense(h), self.dropout, self.training) + residual)  # (B, T, C)


class BertLayer(nn.Module):
    def __init__(self, s: BertShape):
        super().__init__()
        self.attention = BertAttention(s)
        self.intermediate = BertIntermediate(s)
        self.output = BertOutput(s)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = self.attention(x, mask)  # (B, T, C)
        return self.output(self.intermediate(x), x)  # (B, T, C)


class BertEncoder(nn.Module):
    def __init__(self, s: BertShape):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(s) for _ in range(s.num_hidden_layers))


class Bert(nn.Module):
    """Embeddings and the encoder stack (Hugging Face's ``BertModel`` without its pooler)."""

    def __init__(self, s: BertShape):
        super().__init__()
        self.embeddings = BertEmbeddings(s)
        self.encoder = BertEncoder(s)


def key_mask(attention_mask: torch.Tensor | None, b: int, t: int) -> torch.Tensor | None:
    """(B, T) 1/True = token, 0/False = padding -> a (B, 1, 1, T) boolean mask over the keys for
    ``scaled_dot_product_attention``, or None when nothing is padded (SDPA's fastest path needs no mask)."""
    if attention_mask is None:
        return None
    if attention_mask.shape != (b, t):
        raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}, expected {(b, t)}")
    keep = attention_mask if attention_mask.dtype == torch.bool else attention_mask != 0
    if bool(keep.all()):
        return None
    return keep[:, None, None, :]  # (B, 1, 1, T)


class BertForQuestionAnswering(nn.Module):
    """BERT encoder + a linear span head: per token, the logit of the answer starting and ending there."""

    def __init__(self, shape: BertShape):
        super().__init__()
        if shape.hidden_size % shape.num_attention_heads:
            raise ValueError(f"hidden_size={shape.hidden_size} is not divisible by heads")
        if shape.hidden_act not in GELU_APPROXIMATE:
            raise ValueError(f"hidden_act={shape.hidden_act!r}; supported: {', '.join(GELU_APPROXIMATE)}")
        self.shape = shape
        self.bert = Bert(shape)
        self.qa_outputs = nn.Linear(shape.hidden_size, 2)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        """BERT's initialisation: N(0, 0.02) weights (the padding row too), zero biases, LayerNorm 1 / 0."""
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)
        if isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def encode(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        all_layers: bool = False,
    ) -> torch.Tensor | list[torch.Tensor]:
        """The last layer's hidden states (B, T, C); with ``all_layers`` the list of the embedding output and
        every layer's output (L + 1 tensors of (B, T, C), Hugging Face's ``hidden_states`` order)."""
        b, t = input_ids.shape
        if t > self.shape.max_position_embeddings:
            raise ValueError(
                f"{t} tokens, more than max_position_embeddings={self.shape.max_position_embeddings}"
            )
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        mask = key_mask(attention_mask, b, t)  # (B, 1, 1, T) or None
        x = self.bert.embeddings(input_ids, token_type_ids)  # (B, T, C)
        states = [x]
        for layer in self.bert.encoder.layer:
            x = layer(x, mask)  # (B, T, C)
            if all_layers:
                states.append(x)
        return states if all_layers else x

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) ids, segment ids (0 question, 1 context) and mask -> float32 (start, end) logits (B, T)."""
        logits = self.qa_outputs(self.encode(input_ids, token_type_ids, attention_mask)).float()  # (B, T, 2)
        return logits[..., 0].contiguous(), logits[..., 1].contiguous()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def layer_subset(state: dict, keep: list[int]) -> dict:
    """A state_dict with only the encoder layers ``keep``, renumbered: teacher layer ``keep[i]`` becomes
    layer ``i`` (a student of ``len(keep)`` layers starts from evenly spaced teacher layers). Every other
    key is kept as is."""
    prefix = "bert.encoder.layer."
    present = {int(k[len(prefix) :].split(".", 1)[0]) for k in state if k.startswith(prefix)}
    missing = [i for i in keep if i not in present]
    if missing:
        raise ValueError(f"layer_subset: no encoder layer {missing[0]} in the state (it has {len(present)})")
    out = {k: v for k, v in state.items() if not k.startswith(prefix)}
    for new, old in enumerate(keep):
        head = f"{prefix}{old}."
        for k, v in state.items():
            if k.startswith(head):
                out[f"{prefix}{new}.{k[len(head) :]}"] = v
    return out
