"""Optional per-track analysers that look at the faces the tracker follows (liveness)."""

from face_recognizer.analysers.liveness import BlinkLiveness, FaceLiveness

__all__ = ["BlinkLiveness", "FaceLiveness"]
