"""Campaigns: audiences imported into jobs, released on a schedule, reported per recipient."""
