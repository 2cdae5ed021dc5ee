"""
Classify in the learned embedding
=================================

When the task is to predict labels, :class:`norank.NoRankClassifier` learns the same embedding as
:class:`norank.NoRankEmbedder` and classifies new samples in it, with scikit-learn's classifier interface:
``predict``, ``predict_proba`` and ``score``. It works in pipelines, grid searches and cross-validation,
and saves and loads like the embedder.
"""

# %%
# Fit, predict, score
# -------------------
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from norank import NoRankClassifier

QUICK = os.environ.get("NORANK_DOCS_QUICK") == "1"  # fewer epochs when the tests build the docs

digits = load_digits()
X_train, X_test, y_train, y_test = train_test_split(
    digits.images, digits.target, test_size=0.3, stratify=digits.target, random_state=0
)
clf = NoRankClassifier(epochs=10 if QUICK else 30, random_state=0).fit(X_train, y_train)
print("predicted:", clf.predict(X_test[:10]))
print("true:     ", y_test[:10])
print("class probabilities of the first test image:", np.round(clf.predict_proba(X_test[:1]), 3))

# %%
# Beside a logistic regression on the raw pixels and LDA, fitted on the same images:
flat_train, flat_test = X_train.reshape(len(X_train), -1), X_test.reshape(len(X_test), -1)
references = {
    "logistic regression (pixels)": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
    "LDA": LinearDiscriminantAnalysis(),
}
print(f"{'NoRankClassifier':>28}: held-out accuracy {clf.score(X_test, y_test):.3f}")
for name, model in references.items():
    print(f"{name:>28}: held-out accuracy {model.fit(flat_train, y_train).score(flat_test, y_test):.3f}")

ConfusionMatrixDisplay.from_predictions(y_test, clf.predict(X_test), colorbar=False)
plt.title("NoRankClassifier on held-out digits")

# %%
# Save, load, and predict from the command line
# ---------------------------------------------
# ``norank predict MODEL DATA --out labels.npy`` writes the predicted labels of a file's samples.
folder = Path(tempfile.mkdtemp())
clf.save(folder / "model")
same = NoRankClassifier.load(folder / "model")
print("same predictions after loading:", np.array_equal(same.predict(X_test), clf.predict(X_test)))

np.save(folder / "new.npy", X_test)
args = ["predict", "model", "new.npy", "--out", "labels.npy"]
print("$ norank " + " ".join(args))
done = subprocess.run([sys.executable, "-m", "norank", *args], cwd=folder, capture_output=True, text=True, check=True)
print((done.stdout + done.stderr).strip())
labels = np.load(folder / "labels.npy")
print("command-line accuracy:", np.mean(labels == y_test))
plt.show()

for p in sorted(folder.rglob("*"), reverse=True):
    p.rmdir() if p.is_dir() else p.unlink()
folder.rmdir()
