#!/usr/bin/env python3
"""Loads the dashboard in headless Chromium (driven over the DevTools protocol) and reads what
it shows, twice, a second apart: the live-mode label and each card's progress-bar width. Prints
one JSON object. Used by scripts/dashboard-screenshot.sh; needs chromium and websocket-client.

    dashboard-live.py URL [SECONDS]
"""
import json
import socket
import subprocess
import sys
import time
import urllib.request

import websocket  # PyPI websocket-client

url = sys.argv[1]
settle = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
chrome = subprocess.Popen(
    ["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--remote-debugging-port={port}", "about:blank"],
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    tabs = None
    for _ in range(100):
        try:
            tabs = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json"))
            break
        except OSError:
            time.sleep(0.1)
    page = next(t for t in tabs if t["type"] == "page")
    ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=10)
    counter = 0

    def call(method, **params):
        global counter
        counter += 1
        ws.send(json.dumps({"id": counter, "method": method, "params": params}))
        while True:
            message = json.loads(ws.recv())
            if message.get("id") == counter:
                return message

    def read():
        expression = """JSON.stringify({live: document.getElementById('live').textContent,
            cards: [...document.querySelectorAll('.card')].map(c => ({bay: c.querySelector('.bay').textContent,
                width: c.querySelector('.bar>div') ? parseFloat(c.querySelector('.bar>div').style.width) : null,
                text: c.innerText}))})"""
        return json.loads(call("Runtime.evaluate", expression=expression)["result"]["result"]["value"])

    call("Page.navigate", url=url)
    time.sleep(settle)
    first = read()
    time.sleep(1.0)
    second = read()
    print(json.dumps({"first": first, "second": second}))
finally:
    chrome.kill()
    chrome.wait()
