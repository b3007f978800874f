"""Sightings: every tracked face, stored when its track ends; grouping recurring strangers."""
