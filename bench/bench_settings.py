"""Settings for benchmarks: the real settings, with the baselines of bench/bench_urls.py routed beside the API."""

from mev.settings import *  # noqa: F403

ROOT_URLCONF = "bench.bench_urls"
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"auth": "100000/min", "feedback": "100000/min"}}  # noqa: F405
