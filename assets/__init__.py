"""The close's assets: ingestion (landing zone → warehouse), rating (dbt), issuing and publication."""
