"""Encoders f: features → unit-sphere embeddings, and the optional projection head g.

The MLP is the default. The transformer (row or patch tokens) is the paper's transformer baseline trained
with the same objective; the small convolutional encoder is an option for 2-D images.

Randomness never touches torch's global generator, so fits in several threads are independent and the
caller's RNG state is left alone: modules are built on the meta device (no draws) and initialised from
an explicit `torch.Generator`, and dropout draws its masks from a generator of its own (`seed_dropout`).
"""

from __future__ import annotations

import math
from typing import TypeVar

import torch
from torch import nn
from torch.nn import functional as F

ENCODERS = ("mlp", "conv", "transformer")


class Dropout(nn.Module):
    """Inverted dropout whose masks come from `self.generator` (set by `seed_dropout`), not the global RNG."""

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = torch.empty_like(x).bernoulli_(1 - self.p, generator=self.generator)
        return x * keep / (1 - self.p)


def seed_dropout(module: nn.Module, generator: torch.Generator) -> None:
    """Give every norank Dropout in `module` the generator its masks are drawn from."""
    for m in module.modules():
        if isinstance(m, Dropout):
            m.generator = generator


class Normalize(nn.Module):
    """ℓ2-normalise rows so embeddings lie on the unit sphere."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.normalize(h, dim=1, eps=1e-12)


def mlp_layers(sizes, dropout: float = 0.0, layer_norm: bool = False) -> list[nn.Module]:
    """Linear layers of widths `sizes`, ReLU (optionally LayerNorm before it, dropout after it) between
    them and none after the last: the one MLP builder of norank, baselines included."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            if layer_norm:
                layers.append(nn.LayerNorm(n_out))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(Dropout(dropout))
    return layers


class MLPEncoder(nn.Module):
    """Linear–ReLU stack, a last linear layer to the embedding size, then ℓ2 normalisation."""

    def __init__(self, n_features, hidden_layer_sizes, embedding_dim, dropout=0.0, layer_norm=False):
        super().__init__()
        sizes = [n_features, *hidden_layer_sizes, embedding_dim]
        self.body = nn.Sequential(*mlp_layers(sizes, dropout, layer_norm))
        self.normalize = Normalize()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.normalize(self.body(x))


CONV_CHANNELS = (16, 32, 64, 128)


class ConvEncoder(nn.Module):
    """Four strided 3×3 conv blocks with batch normalisation, global average pooling, then an MLP head
    (`hidden_layer_sizes`) to the embedding.

    Global pooling makes the features translation invariant, which is what lattice- and texture-like
    images need (crystal-hard: 1-NN 0.91 vs 0.33 for the MLP over seeds 0-2); it loses the layout that
    aligned faces carry, so the MLP stays the default (docs/defaults.md, "Encoder").
    """

    def __init__(self, image_shape, hidden_layer_sizes, embedding_dim, dropout=0.0):
        super().__init__()
        self.image_shape = tuple(image_shape)
        blocks: list[nn.Module] = []
        for c_in, c_out in zip((1, *CONV_CHANNELS[:-1]), CONV_CHANNELS, strict=True):
            blocks += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
        self.features = nn.Sequential(*blocks)
        self.dropout = Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Sequential(*mlp_layers([CONV_CHANNELS[-1], *hidden_layer_sizes, embedding_dim], dropout, False))
        self.normalize = Normalize()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x.reshape(len(x), 1, *self.image_shape))
        h = self.dropout(h.mean(dim=(2, 3)))
        return self.normalize(self.head(h))


class TransformerEncoder(nn.Module):
    """Tokens (image rows, or fixed-size patches of the feature vector) → transformer → mean pool.

    Images of shape (H, W) use their H rows as tokens; other inputs are cut into `n_tokens` patches.
    """

    def __init__(self, n_features, token_dim, embedding_dim, d_model=64, n_heads=4, n_layers=2, dropout=0.0):
        super().__init__()
        self.n_features = n_features
        self.token_dim = token_dim
        self.n_tokens = math.ceil(n_features / token_dim)
        self.embed = nn.Linear(token_dim, d_model)
        self.position = nn.Parameter(torch.zeros(1, self.n_tokens, d_model))
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, dim_feedforward=2 * d_model, dropout=dropout, batch_first=True
        )
        # Dropout from norank's seeded module instead of torch's (the attention weights are not dropped).
        layer.self_attn.dropout = 0.0
        for name in ("dropout", "dropout1", "dropout2"):
            setattr(layer, name, Dropout(dropout))
        self.blocks = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, embedding_dim)
        self.normalize = Normalize()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.n_tokens * self.token_dim - self.n_features
        if pad:
            x = F.pad(x, (0, pad))
        tokens = self.embed(x.reshape(len(x), self.n_tokens, self.token_dim)) + self.position
        return self.normalize(self.head(self.blocks(tokens).mean(dim=1)))


def build_encoder(
    kind,
    n_features,
    input_shape,
    hidden_layer_sizes,
    embedding_dim,
    dropout,
    layer_norm,
    *,
    generator: torch.Generator | None = None,
    device="cpu",
):
    """The encoder named `kind` for rows of `n_features` features from samples of `input_shape`,
    initialised from `generator` (a fixed seed when None) without drawing from the global RNG."""
    with torch.device("meta"):
        encoder = construct_encoder(
            kind, n_features, input_shape, hidden_layer_sizes, embedding_dim, dropout, layer_norm
        )
    return initialise(encoder, generator, device)


def construct_encoder(kind, n_features, input_shape, hidden_layer_sizes, embedding_dim, dropout, layer_norm):
    """The encoder module named `kind`, uninitialised beyond torch's defaults, on torch's current default
    device: under ``torch.device("meta")`` it costs no memory (how `load` checks a saved layout first)."""
    if kind == "mlp":
        return MLPEncoder(n_features, hidden_layer_sizes, embedding_dim, dropout, layer_norm)
    if kind == "conv":
        if len(input_shape) != 2 or int(input_shape[0]) * int(input_shape[1]) != n_features:
            raise ValueError(
                f"encoder='conv' needs 2-D images (n, H, W) kept whole; got samples of shape {tuple(input_shape)} "
                f"with {n_features} features. Use encoder='mlp' for other tensors."
            )
        return ConvEncoder(input_shape, hidden_layer_sizes, embedding_dim, dropout)
    if kind == "transformer":
        is_image = len(input_shape) == 2 and int(input_shape[0]) * int(input_shape[1]) == n_features
        token_dim = int(input_shape[1]) if is_image else max(1, math.ceil(n_features / 64))
        return TransformerEncoder(n_features, token_dim, embedding_dim, dropout=dropout)
    raise ValueError(f"encoder={kind!r} is not supported; use one of {ENCODERS}.")


def build_head(embedding_dim: int, *, generator: torch.Generator | None = None, device="cpu") -> ProjectionHead:
    with torch.device("meta"):
        head = ProjectionHead(embedding_dim)
    return initialise(head, generator, device)


ModuleT = TypeVar("ModuleT", bound=nn.Module)


def initialise(module: ModuleT, generator: torch.Generator | None, device="cpu") -> ModuleT:
    """Materialise a meta-device module on `device` with torch's default initialisation, drawn from
    `generator`: Kaiming-uniform weights and fan-in uniform biases for linear and conv layers, Xavier for
    attention projections, identity for normalisation layers, zeros for everything else."""
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    module = module.to_empty(device="cpu")
    with torch.no_grad():
        for t in (*module.parameters(), *module.buffers()):
            t.zero_()
        for m in module.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
                if m.bias is not None:
                    bound = 1 / math.sqrt(m.weight[0].numel())
                    nn.init.uniform_(m.bias, -bound, bound, generator=generator)
            elif isinstance(m, (nn.LayerNorm, nn.BatchNorm2d)):
                m.reset_parameters()
        for m in module.modules():  # after the Linear pass: attention resets its output projection's bias
            if isinstance(m, nn.MultiheadAttention):
                nn.init.xavier_uniform_(m.in_proj_weight, generator=generator)
                m.in_proj_bias.zero_()
                m.out_proj.bias.zero_()
    return module.to(device)


class ProjectionHead(nn.Module):
    """g(z): a small MLP used only for the training loss (SimCLR-style); embeddings stay f(x)."""

    def __init__(self, embedding_dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(embedding_dim, embedding_dim), nn.ReLU(), nn.Linear(embedding_dim, embedding_dim)
        )
        self.normalize = Normalize()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.normalize(self.net(z))
