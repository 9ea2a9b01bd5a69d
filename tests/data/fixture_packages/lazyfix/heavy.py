import google.cloud.bigquery  # noqa: F401  (blocked in the test to simulate a missing package)

Heavy = 1
