#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Renders an HTML or SVG file in headless Chromium and checks that it works.

The page must load without an uncaught exception, a console error (console.error/assert or a
browser-logged error), an XML parse error, or a request leaving the file (file: and data: URLs
only; anything else is blocked and reported); and its screenshot must not be blank: at least
--min-colours distinct colours and --min-ink of the pixels differing from the commonest colour.

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: commands on
fd 3, replies and events on fd 4, each a JSON message ending in a NUL byte), so every console
message arrives with its level and every exception as an event, not as log text to parse.

Exit status: 0 when the page passes (or, with --expect-problem, when a problem matching the
pattern was found), 1 when it does not, 2 when the check itself could not run (no chromium,
a crash, a timeout).

usage: check_render.py FILE [--screenshot OUT.png] [--min-colours N] [--min-ink F]
                       [--eval-file JS] [--expect-problem REGEX] [--size WxH]
"""
import argparse
import base64
import fcntl
import json
import os
import pathlib
import queue
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib


class SetupError(Exception):
    """The check could not run (as opposed to the page failing it)."""


def find_chromium():
    override = os.environ.get("KVBITS_CHROMIUM")
    candidates = [override] if override else ["chromium", "chromium-browser"]
    for name in candidates:
        path = shutil.which(name)
        if path:
            return path
    raise SetupError("chromium not found (install it with scripts/install-deps.sh, "
                     "or point KVBITS_CHROMIUM at a Chromium binary)")


class DevTools:
    """A Chromium child process and its DevTools pipe."""

    def __init__(self, binary, profile):
        to_child_read, self._to_child = os.pipe()
        self._from_child, from_child_write = os.pipe()

        def wire_pipes():
            # Above 10 first, so the dup2 onto 3 and 4 never clobbers its own source.
            high_read = fcntl.fcntl(to_child_read, fcntl.F_DUPFD, 10)
            high_write = fcntl.fcntl(from_child_write, fcntl.F_DUPFD, 10)
            os.dup2(high_read, 3)
            os.dup2(high_write, 4)

        args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
                "--user-data-dir=" + profile, "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--mute-audio", "--hide-scrollbars", "about:blank"]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, preexec_fn=wire_pipes,
                                        close_fds=False)
        os.close(to_child_read)
        os.close(from_child_write)
        self._messages = queue.Queue()
        self._next_id = 0
        self.events = []
        threading.Thread(target=self._read, daemon=True).start()
        self._stderr = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _read(self):
        buffer = b""
        while True:
            chunk = os.read(self._from_child, 1 << 16)
            if not chunk:
                self._messages.put(None)
                return
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for message in messages:
                self._messages.put(json.loads(message))

    def _drain_stderr(self):
        for line in self.process.stderr:
            self._stderr.append(line.decode("utf-8", "replace"))

    def stderr_tail(self):
        return "".join(self._stderr[-20:])

    def send(self, method, params=None, session=None):
        """Sends a command and returns its message id."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        try:
            os.write(self._to_child, json.dumps(message).encode() + b"\0")
        except BrokenPipeError:
            raise SetupError(f"chromium exited (status {self.process.wait()}); its stderr ends:\n"
                             + self.stderr_tail()) from None
        return self._next_id

    def next_message(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SetupError("timed out waiting for chromium")
        try:
            message = self._messages.get(timeout=remaining)
        except queue.Empty:
            raise SetupError("timed out waiting for chromium") from None
        if message is None:
            raise SetupError("chromium closed the DevTools pipe; its stderr ends:\n" + self.stderr_tail())
        return message

    def call(self, method, params=None, session=None, deadline=None, on_event=None):
        """Sends a command and waits for its reply, handing events that arrive meanwhile to on_event."""
        wanted = self.send(method, params, session)
        while True:
            message = self.next_message(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise SetupError(f"{method} failed: {message['error']}")
                return message.get("result", {})
            if "method" in message and on_event:
                on_event(message)

    def close(self):
        try:
            self.send("Browser.close")
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        os.close(self._to_child)


def describe_remote(value):
    """A console argument or thrown value (a Runtime.RemoteObject) as text."""
    if "value" in value:
        return str(value["value"])
    return value.get("description") or value.get("type", "?")


class PageWatch:
    """Collects the problems a page reports while it loads and runs."""

    def __init__(self, devtools, session):
        self.devtools = devtools
        self.session = session
        self.problems = []
        self.loaded = False

    def __call__(self, message):
        method, params = message["method"], message.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            thrown = details.get("exception")
            text = describe_remote(thrown) if thrown else details.get("text", "")
            self.problems.append(f"uncaught exception: {text} (line {details.get('lineNumber', 0) + 1})")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(describe_remote(arg) for arg in params.get("args", []))
            self.problems.append(f"console error: {text}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            self.problems.append(f"console error ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}")
        elif method == "Fetch.requestPaused":
            url = params["request"]["url"]
            if url.startswith(("file:", "data:")):
                self.devtools.send("Fetch.continueRequest", {"requestId": params["requestId"]}, self.session)
            else:
                self.problems.append(f"request outside the file: {url}")
                self.devtools.send("Fetch.failRequest",
                                   {"requestId": params["requestId"], "errorReason": "BlockedByClient"},
                                   self.session)
        elif method == "Page.loadEventFired":
            self.loaded = True


def unfilter_rows(data, width, height, channels):
    """The PNG scanlines of 8-bit samples with their filters undone, one bytes object per row."""
    stride = width * channels
    rows = []
    previous = bytearray(stride)
    position = 0
    for _ in range(height):
        kind = data[position]
        row = bytearray(data[position + 1:position + 1 + stride])
        position += 1 + stride
        if kind == 1:  # Sub
            for i in range(channels, stride):
                row[i] = (row[i] + row[i - channels]) & 0xFF
        elif kind == 2:  # Up
            row = bytearray((a + b) & 0xFF for a, b in zip(row, previous))
        elif kind == 3:  # Average
            for i in range(stride):
                left = row[i - channels] if i >= channels else 0
                row[i] = (row[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:  # Paeth
            for i in range(stride):
                a = row[i - channels] if i >= channels else 0
                b = previous[i]
                c = previous[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                predictor = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                row[i] = (row[i] + predictor) & 0xFF
        elif kind != 0:
            raise SetupError(f"PNG: unknown filter type {kind}")
        rows.append(bytes(row))
        previous = row
    return rows


def colour_statistics(png):
    """(width, height, distinct colours, share of pixels unlike the commonest colour) of a PNG."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise SetupError("the screenshot is not a PNG")
    position, chunks, header = 8, [], None
    while position < len(png):
        length, kind = struct.unpack(">I4s", png[position:position + 8])
        body = png[position + 8:position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        elif kind == b"IEND":
            break
    width, height, depth, colour_type, _, _, interlace = header
    channels = {2: 3, 6: 4}.get(colour_type)
    if depth != 8 or channels is None or interlace != 0:
        raise SetupError(f"PNG: unsupported format (depth {depth}, colour type {colour_type}, "
                         f"interlace {interlace})")
    rows = unfilter_rows(zlib.decompress(b"".join(chunks)), width, height, channels)
    counts = {}
    for row in rows:
        pixels = memoryview(row).cast("I") if channels == 4 else \
            (row[i:i + 3] for i in range(0, len(row), 3))
        for pixel in pixels:
            counts[pixel] = counts.get(pixel, 0) + 1
    total = width * height
    return width, height, len(counts), 1.0 - max(counts.values()) / total


def render(path, size, expression, timeout):
    """Loads the page, returns (problems, screenshot PNG bytes)."""
    binary = find_chromium()
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory(prefix="kvbits-chromium-") as profile:
        devtools = DevTools(binary, profile)
        try:
            target = devtools.call("Target.createTarget", {"url": "about:blank"}, deadline=deadline)
            session = devtools.call("Target.attachToTarget",
                                    {"targetId": target["targetId"], "flatten": True},
                                    deadline=deadline)["sessionId"]
            watch = PageWatch(devtools, session)

            def call(method, params=None):
                return devtools.call(method, params, session, deadline, watch)

            for domain in ("Runtime", "Log", "Page"):
                call(domain + ".enable")
            call("Fetch.enable", {"patterns": [{"urlPattern": "*"}]})
            call("Emulation.setDeviceMetricsOverride",
                 {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False})
            navigation = call("Page.navigate", {"url": path.as_uri()})
            if navigation.get("errorText"):
                raise SetupError(f"cannot open {path}: {navigation['errorText']}")
            while not watch.loaded:
                message = devtools.next_message(deadline)
                if "method" in message:
                    watch(message)
            # Two animation frames, so the page's first paint and its timers' errors are in.
            settle = "new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
            call("Runtime.evaluate", {"expression": settle, "awaitPromise": True})
            # An XML (SVG) parse error is shown in the page, not logged: look for its element.
            parse_error = ("(() => { const error = document.getElementsByTagName('parsererror')[0]; "
                           "return error ? error.textContent : true; })()")
            checks = [(parse_error, "the document has an XML parse error")]
            if expression:
                checks.append((expression, "the --eval-file check failed"))
            for check, failure in checks:
                reply = call("Runtime.evaluate",
                             {"expression": check, "awaitPromise": True, "returnByValue": True})
                if "exceptionDetails" in reply:
                    details = reply["exceptionDetails"]
                    thrown = details.get("exception")
                    watch.problems.append(f"{failure}: {describe_remote(thrown) if thrown else details.get('text')}")
                elif reply["result"].get("value") is not True:
                    watch.problems.append(f"{failure}: {reply['result'].get('value')!r}")
            screenshot = call("Page.captureScreenshot", {"format": "png", "optimizeForSpeed": True})
            return watch.problems, base64.b64decode(screenshot["data"])
        finally:
            devtools.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=pathlib.Path)
    parser.add_argument("--screenshot", type=pathlib.Path, help="where to write the screenshot")
    parser.add_argument("--min-colours", type=int, default=16)
    parser.add_argument("--min-ink", type=float, default=0.005,
                        help="least share of pixels unlike the commonest colour")
    parser.add_argument("--eval-file", type=pathlib.Path,
                        help="a file holding a JavaScript expression that must evaluate to true "
                             "(or to a promise of true) once the page has loaded")
    parser.add_argument("--expect-problem", help="pass only if a problem matching this regex is found")
    parser.add_argument("--size", default="1200x900", help="viewport WxH")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    name = args.file.name
    start = time.monotonic()
    try:
        path = args.file.resolve(strict=True)
        size = tuple(int(v) for v in args.size.split("x"))
        expression = args.eval_file.read_text(encoding="utf-8") if args.eval_file else None
        problems, png = render(path, size, expression, args.timeout)
        if args.screenshot:
            args.screenshot.write_bytes(png)
        width, height, colours, ink = colour_statistics(png)
    except (SetupError, OSError, ValueError) as error:
        print(f"check_render: {name}: cannot run the check: {error}", file=sys.stderr)
        return 2
    if colours < args.min_colours:
        problems.append(f"blank screenshot: {colours} distinct colours, fewer than {args.min_colours}")
    if ink < args.min_ink:
        problems.append(f"blank screenshot: {ink:.2%} of pixels drawn, less than {args.min_ink:.2%}")
    seconds = time.monotonic() - start
    print(f"check_render: {name}: screenshot {width}x{height}, {colours} distinct colours, "
          f"{ink:.1%} of pixels drawn, {len(problems)} problem(s), {seconds:.1f} s")
    for problem in problems:
        print(f"  {problem}")
    if args.expect_problem:
        pattern = re.compile(args.expect_problem)
        if any(pattern.search(problem) for problem in problems):
            print(f"check_render: {name}: the expected problem /{args.expect_problem}/ was detected")
            return 0
        print(f"check_render: {name}: FAILED: no problem matches /{args.expect_problem}/", file=sys.stderr)
        return 1
    if problems:
        print(f"check_render: {name}: FAILED", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
