import time

time.sleep(0.05)  # widen the first-access window for the thread-safety test
LIGHT_VALUE = object()
