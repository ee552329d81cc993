"""The WSGI side of the sandbox: one app per gateway host, and the control routes.

`SandboxApp` applies scripted faults around a simulator's `handle()`, records
every request, and serves `/__sandbox__/{messages,requests,faults,hosts,config,reset}`
on every host (and on the server's control port).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from providers.sandbox.core import (
    CONTROL_PREFIX,
    POST_FAULTS,
    PRE_FAULTS,
    DropConnection,
    Environ,
    Fault,
    GatewaySimulator,
    SandboxState,
    SimRequest,
    SimResponse,
    StartResponse,
)


class SandboxApp:
    """WSGI app for one host of one gateway: control routes, faults, then the simulator."""

    def __init__(self, sim: GatewaySimulator, host: str) -> None:
        self.sim = sim
        self.host = host
        self.state = sim.state

    def __call__(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        req = parse_request(environ, self.host)
        if req.path.startswith(CONTROL_PREFIX):
            resp = control(self.state, req)
        else:
            resp = self.serve(req, environ)
        start_response(f"{resp.status} {_REASONS.get(resp.status, 'Status')}",
                       [("Content-Type", resp.content_type),
                        ("Content-Length", str(len(resp.body))),
                        *resp.headers.items()])
        return [resp.body]

    def serve(self, req: SimRequest, environ: Environ) -> SimResponse:
        gateway, state = self.sim.name, self.state
        if state.is_down(self.host):
            environ["sandbox.refuse"] = True
            raise DropConnection("host down")
        fault = state.take_fault(gateway, self.host, req.path, PRE_FAULTS)
        if fault is not None:
            resp = self._pre_fault(fault, req)
        else:
            resp = self.sim.handle(req)
            post = state.take_fault(gateway, self.host, req.path, POST_FAULTS)
            if post is not None:
                resp = self._post_fault(post, resp, environ)
        state.record_request(gateway, self.host, req, resp.status, self.sim.wire_validity(req))
        return resp

    def _pre_fault(self, fault: Fault, req: SimRequest) -> SimResponse:
        if fault.kind == "drop_before":
            raise DropConnection("scripted drop before processing")
        if fault.kind == "throttle":
            return self.sim.throttle_response(req)
        if fault.kind == "html":
            page = fault.body or "<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
            return SimResponse(fault.status or 502, page.encode(), "text/html")
        body = (fault.body or '{"error": "internal"}').encode()
        return SimResponse(fault.status or 500, body, "application/json")

    def _post_fault(self, fault: Fault, resp: SimResponse, environ: Environ) -> SimResponse:
        if fault.kind == "drop":
            raise DropConnection("scripted drop after processing")
        if fault.kind == "malformed":
            return SimResponse(200, resp.body[: max(1, len(resp.body) // 2)], resp.content_type)
        environ["sandbox.delay"] = fault.delay or 60.0  # timeout / slow
        return resp


def parse_request(environ: Environ, host: str) -> SimRequest:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items()
               if k.startswith("HTTP_")}
    ctype = str(environ.get("CONTENT_TYPE") or "")
    headers["content-type"] = ctype
    query = parse_qsl(str(environ.get("QUERY_STRING") or ""), keep_blank_values=True)
    form: list[tuple[str, str]] = []
    if "application/x-www-form-urlencoded" in ctype or (body and not ctype):
        form = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    path = str(environ.get("PATH_INFO") or "/")
    while "//" in path:
        path = path.replace("//", "/")
    return SimRequest(str(environ.get("REQUEST_METHOD", "GET")).upper(), path, host,
                      headers, query, form, body)


def control(state: SandboxState, req: SimRequest) -> SimResponse:
    """`/__sandbox__/{messages,requests,faults,hosts,config,reset}`."""
    route = req.path[len(CONTROL_PREFIX):].strip("/")
    data = req.json() if req.body else None
    if route == "messages" and req.method == "GET":
        gateway = dict(req.query).get("gateway")
        with state.lock:
            rows = [m.public() for m in state.messages if gateway in (None, m.gateway)]
        return SimResponse.json(rows)
    if route == "requests" and req.method == "GET":
        with state.lock:
            return SimResponse.json(list(state.requests))
    if route == "faults" and req.method == "POST":
        items = data if isinstance(data, list) else [data]
        try:
            for item in items:
                state.add_fault(Fault(**(item if isinstance(item, dict) else {})))
        except TypeError as exc:
            return SimResponse.json({"error": str(exc)}, status=400)
        return SimResponse.json({"faults": len(state.faults)})
    if route == "faults" and req.method == "DELETE":
        with state.lock:
            state.faults.clear()
        return SimResponse.json({"faults": 0})
    if route == "hosts" and req.method == "POST" and isinstance(data, dict):
        state.set_host(str(data.get("host")), bool(data.get("up", True)))
        return SimResponse.json({"down": sorted(state.down_hosts)})
    if route == "config" and req.method == "POST" and isinstance(data, dict):
        state.configure(data)
        return SimResponse.json({"ok": True})
    if route == "reset" and req.method == "POST":
        state.reset()
        return SimResponse.json({"ok": True})
    return SimResponse.json({"error": f"no control route {route!r}"}, status=404)


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 405: "Method Not Allowed", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
