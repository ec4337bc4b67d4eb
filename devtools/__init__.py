"""Local-only tooling: the emulator stack, the one-port dev server, seeding. Never deployed."""
