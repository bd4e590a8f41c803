"""yieldmc._xla: the XLA:CPU defaults are added to XLA_FLAGS, never override the user's."""

from __future__ import annotations

from yieldmc import _xla


def test_defaults_are_appended_and_user_values_kept():
    env = {}
    _xla.set_defaults(env)
    assert env["XLA_FLAGS"] == "--xla_cpu_prefer_vector_width=512"
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    _xla.set_defaults(env)
    assert env["XLA_FLAGS"] == "--xla_force_host_platform_device_count=2 --xla_cpu_prefer_vector_width=512"
    env = {"XLA_FLAGS": "--xla_cpu_prefer_vector_width=256"}
    _xla.set_defaults(env)
    assert env["XLA_FLAGS"] == "--xla_cpu_prefer_vector_width=256"
    _xla.set_defaults(env)  # idempotent
    assert env["XLA_FLAGS"] == "--xla_cpu_prefer_vector_width=256"
    env = {"XLA_FLAGS": "-xla_cpu_prefer_vector_width=256"}  # absl's single-dash form
    _xla.set_defaults(env)
    assert env["XLA_FLAGS"] == "-xla_cpu_prefer_vector_width=256"
    env = {"XLA_FLAGS": "--xla_cpu_prefer_vector_width_other=1"}  # another option's prefix
    _xla.set_defaults(env)
    assert env["XLA_FLAGS"].endswith(" --xla_cpu_prefer_vector_width=512")


def test_importing_yieldmc_set_the_flag_in_this_process():
    import os
    import re

    assert re.search(r"(^|\s)--?xla_cpu_prefer_vector_width=", os.environ.get("XLA_FLAGS", ""))
