"""What an SMTP worker enforces alone is its share of the node's bound (app.workers.worker_share)."""

from __future__ import annotations

from dizimail.app.workers import worker_share
from dizimail.config.schema import AntispamConfig, Config, LimitsConfig


def test_each_worker_gets_its_share_of_the_node_wide_bounds():
    config = Config(antispam=AntispamConfig(max_connection_rate=120), limits=LimitsConfig(max_check_memory=256 << 20))
    two = worker_share(config, 2)
    assert two.antispam.max_connection_rate == 60 and two.limits.max_check_memory == 128 << 20
    three = worker_share(config, 3)
    assert three.antispam.max_connection_rate == 40 and three.limits.max_check_memory == -(-(256 << 20) // 3)
    assert config.antispam.max_connection_rate == 120  # the node's own config is left as it was
    assert worker_share(Config(antispam=AntispamConfig(max_connection_rate=0)), 4).antispam.max_connection_rate == 0
    assert worker_share(Config(antispam=AntispamConfig(max_connection_rate=3)), 8).antispam.max_connection_rate == 1
