import os

# keep TensorFlow quiet and single-process-friendly in tests
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# scikit-learn's array API checks (check_array_api_input) run only when
# SciPy's array API support is on, which must be set before SciPy is
# imported; without it they are skipped, and would hide real failures.
os.environ.setdefault("SCIPY_ARRAY_API", "1")
