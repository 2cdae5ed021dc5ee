"""Unsupervised neural baselines: a variational autoencoder and Deep Embedded Clustering (DEC).

Both take the vectorised samples standardised per feature with the training mean and std, train small
MLPs on the CPU with Adam, and embed a sample by its encoder output (the VAE's posterior mean). All
randomness (initial weights, batch order, the VAE's noise, DEC's k-means) comes from `random_state`:
torch runs inside `torch.random.fork_rng` with its own seed and a `torch.Generator`, so the caller's
global random state is left as it was.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler
from torch import nn

from norank.baselines._base import VectorBaseline, check_int, seed_of, store_params
from norank.encoders import mlp_layers


def mlp(sizes) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last): norank's MLP builder, no dropout."""
    return nn.Sequential(*mlp_layers(sizes))


def batches(n: int, batch_size: int, generator: torch.Generator):
    """Index tensors of one shuffled pass over n samples."""
    order = torch.randperm(n, generator=generator)
    return order.split(batch_size)


class _TorchBaseline(VectorBaseline):
    """Per-feature standardisation, then a torch model trained under a private seed."""

    def _fit_rows(self, F, y):
        self.scaler_ = StandardScaler().fit(F)
        data = torch.as_tensor(self.scaler_.transform(F), dtype=torch.float32)
        seed = seed_of(self.random_state)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            generator = torch.Generator().manual_seed(seed)
            self._train(data, y, generator, seed)

    def _transform_rows(self, F):
        data = torch.as_tensor(self.scaler_.transform(F), dtype=torch.float32)
        with torch.no_grad():
            return self._encode(data).numpy()

    def _settings(self):
        return (
            check_int(self.epochs, "epochs"),
            check_int(self.batch_size, "batch_size"),
            tuple(check_int(h, "hidden_layer_sizes entries") for h in self.hidden_layer_sizes),
            check_int(self.latent_dim, "latent_dim"),
        )


class VAEBaseline(_TorchBaseline):
    """A Gaussian MLP VAE (Kingma & Welling 2014); embedding = posterior mean μ(x).

    Loss per sample: ½‖x − x̂‖² (unit-variance Gaussian decoder on standardised features) + β·KL(q(z|x)‖N(0, I)).

    Parameters
    ----------
    latent_dim : int, default=10
    hidden_layer_sizes : tuple of int, default=(256,)
        Encoder widths; the decoder mirrors them.
    epochs : int, default=30
    batch_size : int, default=64
    learning_rate : float, default=1e-3
    beta : float, default=1.0
    random_state : int, default=0

    Attributes
    ----------
    loss_curve_ : list of float, mean loss per epoch.
    """

    name = "vae"

    def __init__(
        self,
        latent_dim=10,
        hidden_layer_sizes=(256,),
        epochs=30,
        batch_size=64,
        learning_rate=1e-3,
        beta=1.0,
        random_state=0,
    ):
        store_params(self, locals())

    def _train(self, data, y, generator, seed):
        epochs, batch_size, hidden, latent = self._settings()
        d = data.shape[1]
        self.encoder_ = mlp((d, *hidden, 2 * latent))
        self.decoder_ = mlp((latent, *hidden[::-1], d))
        params = list(self.encoder_.parameters()) + list(self.decoder_.parameters())
        opt = torch.optim.Adam(params, lr=self.learning_rate)
        self.loss_curve_ = []
        for _ in range(epochs):
            total = 0.0
            for idx in batches(len(data), batch_size, generator):
                x = data[idx]
                mu, logvar = self.encoder_(x).chunk(2, dim=1)
                eps = torch.randn(mu.shape, generator=generator)
                x_hat = self.decoder_(mu + eps * torch.exp(0.5 * logvar))
                recon = 0.5 * ((x - x_hat) ** 2).sum(1)
                kl = 0.5 * (mu**2 + logvar.exp() - 1.0 - logvar).sum(1)
                loss = (recon + self.beta * kl).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            self.loss_curve_.append(total / len(data))
        self.encoder_.eval()
        self.n_components_ = latent

    def _encode(self, data):
        return self.encoder_(data).chunk(2, dim=1)[0]


class DECBaseline(_TorchBaseline):
    """Deep Embedded Clustering (Xie, Girshick & Farhadi 2016); embedding = the encoder output z(x).

    An MLP autoencoder is pretrained end to end on reconstruction (the paper pretrains a stacked denoising
    autoencoder layer by layer); k-means on z gives k initial centres; then encoder and centres minimise
    KL(P‖Q), where q_ij ∝ (1 + ‖z_i − μ_j‖²/α)^(−(α+1)/2) is a Student-t soft assignment and the target
    p_ij ∝ q_ij² / Σ_i q_ij is recomputed on all samples once per epoch. Refinement stops when fewer than
    `tol` of the hard assignments change between epochs, or after `refine_epochs`.

    DEC is unsupervised: `n_clusters` is passed in, or, when None, taken as the number of distinct labels
    in y_train; the labels themselves are never used.

    Parameters
    ----------
    n_clusters : int or None, default=None
    latent_dim : int, default=10
    hidden_layer_sizes : tuple of int, default=(256,)
    epochs : int, default=20
        Autoencoder pretraining epochs.
    refine_epochs : int, default=20
    batch_size : int, default=64
    learning_rate : float, default=1e-3
    alpha : float, default=1.0
    tol : float, default=0.001
    random_state : int, default=0

    Attributes
    ----------
    n_clusters_ : int
    cluster_centers_ : (n_clusters_, latent_dim) array
    labels_ : hard cluster assignment of the training samples after refinement.
    n_refine_epochs_ : int, refinement epochs run.
    """

    name = "dec"

    def __init__(
        self,
        n_clusters=None,
        latent_dim=10,
        hidden_layer_sizes=(256,),
        epochs=20,
        refine_epochs=20,
        batch_size=64,
        learning_rate=1e-3,
        alpha=1.0,
        tol=0.001,
        random_state=0,
    ):
        store_params(self, locals())

    def _cluster_count(self, y, n):
        if self.n_clusters is not None:
            k = check_int(self.n_clusters, "n_clusters", minimum=2)
        elif y is not None:
            k = len(np.unique(y))
        else:
            raise ValueError(
                "DEC needs the number of clusters: pass n_clusters=k, or y_train (only its number of "
                "distinct labels is used)."
            )
        if k < 2 or k > n:
            raise ValueError(f"DEC needs 2 <= n_clusters <= n_train ({n}), got {k}.")
        return k

    def _soft_assign(self, z, centers):
        q = (1.0 + torch.cdist(z, centers) ** 2 / self.alpha) ** (-(self.alpha + 1.0) / 2.0)
        return q / q.sum(1, keepdim=True)

    def _train(self, data, y, generator, seed):
        epochs, batch_size, hidden, latent = self._settings()
        self.n_clusters_ = self._cluster_count(y, len(data))
        d = data.shape[1]
        self.encoder_ = mlp((d, *hidden, latent))
        decoder = mlp((latent, *hidden[::-1], d))
        opt = torch.optim.Adam(list(self.encoder_.parameters()) + list(decoder.parameters()), lr=self.learning_rate)
        for _ in range(epochs):
            for idx in batches(len(data), batch_size, generator):
                loss = ((decoder(self.encoder_(data[idx])) - data[idx]) ** 2).sum(1).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()

        with torch.no_grad():
            z = self.encoder_(data).numpy()
        km = KMeans(self.n_clusters_, n_init=10, random_state=seed).fit(z)
        centers = nn.Parameter(torch.as_tensor(km.cluster_centers_, dtype=torch.float32))
        opt = torch.optim.Adam(list(self.encoder_.parameters()) + [centers], lr=self.learning_rate)
        labels = torch.as_tensor(km.labels_)
        self.n_refine_epochs_ = 0
        for _ in range(check_int(self.refine_epochs, "refine_epochs", minimum=0)):
            with torch.no_grad():
                q = self._soft_assign(self.encoder_(data), centers)
                p = q**2 / q.sum(0, keepdim=True)
                p = p / p.sum(1, keepdim=True)
                new_labels = q.argmax(1)
            changed = float((new_labels != labels).float().mean())
            labels = new_labels
            if self.n_refine_epochs_ > 0 and changed < self.tol:
                break
            for idx in batches(len(data), batch_size, generator):
                q_batch = self._soft_assign(self.encoder_(data[idx]), centers)
                loss = (p[idx] * (torch.log(p[idx] + 1e-12) - torch.log(q_batch + 1e-12))).sum(1).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            self.n_refine_epochs_ += 1
        self.encoder_.eval()
        with torch.no_grad():
            self.labels_ = self._soft_assign(self.encoder_(data), centers).argmax(1).numpy()
        self.cluster_centers_ = centers.detach().numpy().copy()
        self.n_components_ = latent

    def _encode(self, data):
        return self.encoder_(data)
