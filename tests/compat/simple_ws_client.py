#!/usr/bin/python3
"""WebSocket client for /ws/orders, as the seed systems' own
simple_ws_client.py and README example did it: print the initial orders,
then every update.

    /usr/bin/python3 tests/compat/simple_ws_client.py ws://127.0.0.1:8080/ws/orders

test_all_apis.py imports connect() and FrameLog from here: FrameLog
records every frame the server sends (websockets logs them at DEBUG), so a
test can tell text messages from keep-alive pings.
"""

import asyncio
import json
import logging
import sys

import websockets


OPCODES = {"CONT", "TEXT", "BINARY", "CLOSE", "PING", "PONG"}


class FrameLog(logging.Handler):
    """Keeps the opcode of every frame received ("TEXT", "PING", ...).
    websockets logs each as "< TEXT '...' [12 bytes]" (the handshake's
    response headers are logged with "< " too, and are left out)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.frames = []

    def emit(self, record):
        message = record.getMessage()
        opcode = message[2:].split(" ", 1)[0]
        if message.startswith("< ") and opcode in OPCODES:
            self.frames.append(opcode)

    def count(self, opcode):
        return self.frames.count(opcode)


def connect(uri, frames=None):
    """websockets.connect(uri), logging frames into frames (a FrameLog).
    No client pings: the only pings on the socket are the server's."""
    logger = logging.getLogger(f"simple_ws_client.{id(frames)}")
    logger.propagate = False
    if frames is not None:
        logger.setLevel(logging.DEBUG)
        logger.addHandler(frames)
    return websockets.connect(uri, ping_interval=None, logger=logger,
                              open_timeout=5, close_timeout=2)


async def connect_to_orders(uri):
    async with connect(uri) as websocket:
        initial = json.loads(await websocket.recv())
        print(f"Initial orders: {len(initial['orders'])}")
        while True:
            update = json.loads(await websocket.recv())
            print(f"New update: {update}")


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8080/ws/orders"
    try:
        asyncio.run(connect_to_orders(target))
    except KeyboardInterrupt:
        pass
