"""Runs PyPI gcloud-tasks-emulator bound to 127.0.0.1 (it binds [::] by itself).

Usage: python -m devtools.standins.tasks_emulator PORT MAX_RETRIES QUEUE [QUEUE ...]
(queues as projects/P/locations/L/queues/Q). Dispatches HTTP tasks to their URLs.
"""
import logging
import sys

import grpc
from gcloud_tasks_emulator import server


def _run(self):  # APIThread.run, with a loopback-only listener
    self._httpd = grpc.server(server.futures.ThreadPoolExecutor(max_workers=4))
    server.add_CloudTasksServicer_to_server(server.Greeter(self._state), self._httpd)
    self._httpd.add_insecure_port(f"127.0.0.1:{self._port}")
    self._httpd.start()
    while self._is_running.is_set():
        server.time.sleep(server._LOOP_SLEEP_TIME)


def main() -> None:
    port, max_retries, queues = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    logging.basicConfig(level=logging.INFO, stream=sys.stdout)
    server.APIThread.run = _run
    server.create_server("127.0.0.1", port, "127.0.0.1", 0, queues, max_retries).run()


if __name__ == "__main__":
    main()
