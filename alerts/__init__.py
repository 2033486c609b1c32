"""Alerts: tell the on-call engineer, exactly once, when a close fails or a warning check fails.

Sensors (orchestration/sensors.py) find what happened in the Dagster instance;
`alerts.messages` words it, `alerts.delivery` claims it in the durable store
(`alerts.store`, the operational store beside the warehouse) and sends it on
the configured channels (`alerts.channels`); `alerts.mirror` copies the store
into `marts.alerts` of the published copy. A killed close is marked failed by Dagster
(the code server that launched its run worker), then alerts like any failed close.
"""
