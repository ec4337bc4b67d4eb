"""Runs PyPI localstripe bound to 127.0.0.1, its state in memory only.

By itself localstripe listens on [::] and pickles its whole store to
/tmp/localstripe.pickle after every write (and reloads it at start): here the
listener is loopback-only and the dump is a no-op, so every run starts empty
and leaves nothing behind.

Usage: python -m devtools.standins.localstripe PORT
"""
import logging
import socket
import sys

from aiohttp import web
from localstripe import server
from localstripe.resources import store


def main() -> None:
    port = int(sys.argv[1])
    store.dump_to_disk = lambda: None  # instance attribute shadows Store.dump_to_disk
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    logging.basicConfig(level=logging.INFO, stream=sys.stdout)
    web.run_app(server.app, sock=sock, access_log=logging.getLogger("aiohttp.access"), print=None)


if __name__ == "__main__":
    main()
