# A graphql-transport-ws subscription from Python's websockets: connection_init, subscribe
# to a table from a commit timestamp, print the first event's payload. Arguments: the
# server's host:port and the commit timestamp.
import asyncio
import json
import sys

import websockets


async def main(address, since):
    async with websockets.connect(
        f"ws://{address}/graphql", subprotocols=["graphql-transport-ws"]
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        ack = json.loads(await ws.recv())
        assert ack["type"] == "connection_ack", ack
        query = (
            'subscription { orders(from: "%s") { operation after { id status } commitTs } }'
            % since
        )
        await ws.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}})
        )
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 20))
            if message["type"] == "next":
                print(json.dumps(message["payload"]))
                return


asyncio.run(main(sys.argv[1], sys.argv[2]))
