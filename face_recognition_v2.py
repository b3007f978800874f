#!/usr/bin/env python3
"""Live recognition window: same as `face-recognizer recognize`."""

from face_recognizer.cli import main

if __name__ == "__main__":
    main(command="recognize")
