import os

# keep TensorFlow quiet and single-process-friendly in tests
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
