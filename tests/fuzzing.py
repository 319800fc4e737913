"""Hypothesis profiles for the property-based fuzzing of the codecs (tests/test_codec_properties.py).

``HYPOTHESIS_PROFILE=fuzz`` (``make fuzz``): 100 000 inputs for each codec's "never raises" property (so
each codec sees at least 100 000 hostile inputs), a quarter of that for the round trips, a tenth for
stream splitting in random chunkings; no deadline. Default ``ci``: a short run for every ``make test``, with a
fixed seed (derandomized) so a red CI run reproduces on any machine. ``dev``: the short run, random."""

import os

from hypothesis import HealthCheck, settings

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100000"))

settings.register_profile("ci", max_examples=150, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("dev", max_examples=150, deadline=None, print_blob=True)
settings.register_profile("fuzz", max_examples=FUZZ_EXAMPLES, deadline=None, print_blob=True,
                          suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def scaled(fraction: float) -> settings:
    """The loaded profile with a fraction of its examples, for a property whose inputs cost many times a
    plain decode (stream splitting in every chunking, generated packets); never below the short run's 150."""
    return settings(settings.default, max_examples=max(150, int(settings.default.max_examples * fraction)))
