"""
A custom loss and a callback
============================

The estimator composes its parts from keywords. ``loss=`` takes a name (``"triplet"``, ``"supcon"``,
``"proxy_anchor"``, ...) or any callable ``loss(embeddings, labels) -> scalar tensor`` — for instance a
loss from `pytorch-metric-learning <https://kevinmusgrave.github.io/pytorch-metric-learning/>`_; when
the loss has parameters of its own (class weights, proxies), they are trained with the encoder.
``callbacks=`` takes functions ``f(epoch, logs)`` called after every epoch with that epoch's loss terms
and diagnostics; a callback that returns ``True`` stops training.
"""

# %%
# Losses from pytorch-metric-learning
# -----------------------------------
import os

import matplotlib.pyplot as plt
from pytorch_metric_learning.losses import ArcFaceLoss, SupConLoss
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from norank import NoRankEmbedder
from norank.metrics import evaluate

QUICK = os.environ.get("NORANK_DOCS_QUICK") == "1"  # fewer epochs when the tests build the docs
EPOCHS = 8 if QUICK else 30

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)

losses = {
    "triplet (default)": "triplet",
    "SupConLoss(temperature=0.1)": SupConLoss(temperature=0.1),
    "ArcFaceLoss (trained class weights)": ArcFaceLoss(num_classes=10, embedding_size=64),
}
histories = {}
for name, loss in losses.items():
    est = NoRankEmbedder(loss=loss, epochs=EPOCHS, random_state=0).fit(X_train, y_train)
    histories[name] = est.history_["loss"]
    s = evaluate(est.transform(X_test), y_test)
    print(f"{name:>36}: held-out ARI {s['ari']:.3f}, precision@1 {s['precision_at_1']:.3f}, MAP@R {s['map_at_r']:.3f}")

# %%
# The losses are on different scales, so each curve is divided by its first value.
fig, ax = plt.subplots(figsize=(6, 3.4))
for name, h in histories.items():
    ax.plot([v / h[0] for v in h], label=name)
ax.set(xlabel="epoch", ylabel="loss / first epoch's loss")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# A callback that stops on a plateau
# ----------------------------------
# A callback sees the epoch number and a dict of that epoch's values (the same names as ``history_``).
# This one records them and stops once the loss has improved by less than 2 % over three epochs.
seen = []


def stop_on_plateau(epoch, logs):
    seen.append((epoch, logs["loss"]))
    if len(seen) > 3 and seen[-1][1] > 0.98 * seen[-4][1]:
        print(f"stopping after {len(seen)} epochs: loss {logs['loss']:.4f}, 3 epochs ago {seen[-4][1]:.4f}")
        return True
    return None


est = NoRankEmbedder(epochs=3 * EPOCHS, callbacks=[stop_on_plateau], random_state=0).fit(X_train, y_train)
print(f"asked for {3 * EPOCHS} epochs, ran {est.n_epochs_}; the callback saw {len(seen)} epochs")

fig, ax = plt.subplots(figsize=(6, 3.4))
ax.plot([e for e, _ in seen], [v for _, v in seen], marker="o")
ax.set(xlabel="epoch", ylabel="training loss", title="stopped by the callback")
fig.tight_layout()
plt.show()
