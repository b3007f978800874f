#!/usr/bin/env python3
"""Enrol a person from the camera (S snaps, Q finishes): same as `face-recognizer register`."""

from face_recognizer.cli import main

if __name__ == "__main__":
    main(command="register")
