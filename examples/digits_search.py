"""Search projection method x dimension on digits, then save and reload the best.

The library version of what ``skquant demo`` does: one Pipeline
(Cleaner -> ColumnProjection -> KerasMLPClassifier), a GridSearchCV over the
projection method and its dimension, a held-out test score, and a joblib
round trip.

Run: python examples/digits_search.py   (about three minutes on 2 CPU cores)
"""

import os
import tempfile

import joblib
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split

import skquant

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

pipe = skquant.make_quant_pipeline("column", n_components=32, random_state=0)
grid = skquant.projection_grid(dims=(8, 16, 32), random_state=0)
search = GridSearchCV(pipe, grid, cv=3).fit(X_train, y_train)

for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
    print(f"{params['project'].method:>7} {params['project__n_components']:>3}  CV accuracy {score:.4f}")
best = search.best_estimator_
print("best:", search.best_params_["project"].method, search.best_params_["project__n_components"])
print(f"test accuracy: {best.score(X_test, y_test):.4f}")

path = os.path.join(tempfile.mkdtemp(), "digits.joblib")
joblib.dump(best, path)
reloaded = joblib.load(path)
assert np.array_equal(reloaded.predict(X_test), best.predict(X_test))
print(f"saved and reloaded {path} ({os.path.getsize(path)} bytes): identical predictions")
