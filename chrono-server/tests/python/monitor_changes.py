# The documented "Real-time Streaming" example, verbatim apart from the port (the first
# argument) and the last line that runs it.
import asyncio
import sys

import websockets
import json

PORT = sys.argv[1]

async def monitor_changes():
    async with websockets.connect(f'ws://localhost:{PORT}') as ws:
        await ws.send(json.dumps({'type': 'subscribe', 'table': 'orders'}))
        while True:
            message = await ws.recv()
            print("Update:", message)

asyncio.run(monitor_changes())
