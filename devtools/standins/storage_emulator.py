"""Runs PyPI gcp-storage-emulator in memory, bound to 127.0.0.1, with one bucket.

Usage: python -m devtools.standins.storage_emulator PORT BUCKET
It accepts signed URLs without checking the signature, so the media code checks
what was uploaded (size, content type) itself when the object is registered.
"""
import logging
import sys

from gcp_storage_emulator.server import create_server


def main() -> None:
    port, bucket = int(sys.argv[1]), sys.argv[2]
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout)
    create_server("127.0.0.1", port, in_memory=True, default_bucket=bucket).run()


if __name__ == "__main__":
    main()
