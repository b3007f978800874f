from face_recognizer.cli import main

main()
