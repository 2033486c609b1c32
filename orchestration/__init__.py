"""The one Dagster code location: each domain's Definitions merged (definitions.py), the close's job, schedule
and sensors, the resources bound from the settings, the instance's dagster.yaml and the private hooks."""
