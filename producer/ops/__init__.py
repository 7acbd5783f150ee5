"""Operator-facing servers and views: notify hook, metrics exporter, Flower launcher, stats."""
