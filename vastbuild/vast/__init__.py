"""Talking to Vast: the HTTP client, the update-tier planner and the local
record of the last deploy. Nothing here builds; nothing here prints."""
