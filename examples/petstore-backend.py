#!/usr/bin/env python3
"""A tiny Petstore REST API for trying the `openapi` backend: it implements the three
operations of openapi/petstore.yaml (listPets, createPets, showPetById) in memory.

Uses only the Python standard library, so it runs anywhere Python 3.8+ does:

    python3 examples/petstore-backend.py [port]     # default 9000, loopback only
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

PETS = {1: {"id": 1, "name": "Rex", "tag": "dog"}, 2: {"id": 2, "name": "Tom", "tag": "cat"}}
LOCK = threading.Lock()


class Petstore(BaseHTTPRequestHandler):
    def send_json(self, status, value):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def error(self, status, message):
        self.send_json(status, {"code": status, "message": message})

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/v1/pets":
            try:
                limit = int(parse_qs(url.query).get("limit", ["100"])[0])
            except ValueError:
                return self.error(400, "limit must be an integer")
            with LOCK:
                pets = sorted(PETS.values(), key=lambda p: p["id"])[: max(0, min(limit, 100))]
            return self.send_json(200, pets)
        if url.path.startswith("/v1/pets/") and url.path.count("/") == 3:
            pet_id = unquote(url.path[len("/v1/pets/"):])
            with LOCK:
                pet = PETS.get(int(pet_id)) if pet_id.isdigit() else None
            if pet is None:
                return self.error(404, f"no pet with id {pet_id!r}")
            return self.send_json(200, pet)
        self.error(404, "no such resource")

    def do_POST(self):
        if urlsplit(self.path).path != "/v1/pets":
            return self.error(404, "no such resource")
        try:
            length = int(self.headers.get("Content-Length", "0"))
            pet = json.loads(self.rfile.read(length))
            pet = {"id": int(pet["id"]), "name": str(pet["name"]), **({"tag": str(pet["tag"])} if "tag" in pet else {})}
        except (ValueError, KeyError, TypeError):
            return self.error(400, "a pet needs an integer id and a name")
        with LOCK:
            PETS[pet["id"]] = pet
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, fmt, *args):
        sys.stderr.write("petstore: " + (fmt % args) + "\n")


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    server = ThreadingHTTPServer(("127.0.0.1", port), Petstore)
    print(f"petstore listening on http://127.0.0.1:{port}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
