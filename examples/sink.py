#!/usr/bin/env python3
"""A subscriber for the walk-through: prints every event it receives.

Usage: python3 examples/sink.py [port]   (default 9090)
"""
import http.server
import json
import sys


class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        attributes = {k: v for k, v in self.headers.items() if k.lower().startswith("ce-")}
        print(json.dumps({"attributes": attributes, "data": body.decode(errors="replace")}), flush=True)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 9090), Sink).serve_forever()
