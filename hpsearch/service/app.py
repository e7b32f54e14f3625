"""The REST API of ``hpsearch serve`` (FastAPI): JSON in, JSON out, OpenAPI at ``/docs``.

==========================================  =============================================
``POST /requests``                          create a request (a search) -> 201
                                            ``{"request_id": 2}``
``GET /requests``                           every request's status (a list)
``GET /requests/{rid}``                     one request's status
``GET /requests/{rid}/points``              points; ``?status=new`` hands new points out
                                            (they come back ``running``); ``&limit=N``
``PUT /requests/{rid}/points/{id}``         report a point's loss, metrics or failure
==========================================  =============================================

Bodies::

    POST /requests      {"search": {"parameters": {"lr": {"method": "loguniform",
                          "low": 1e-5, "high": 0.1}}, "algorithm": "tpe"},
                         "max_points": 50, "num_points_per_generation": 10}
    GET  .../points     [{"id": 0, "params": {"lr": 0.0031}, "status": "running",
                          "loss": null, "run_id": "000000-5be1f0a2",
                          "resume_from": null}, ...]
    PUT  .../points/0   {"loss": 0.231} | {"metrics": {"val_loss": 0.231, "val_acc": 0.93}}
                        | {"failure": "CUDA out of memory"}   -> the point, as reported

A worker names itself in the ``X-Hpsearch-Worker`` header (the client sends
``<host>:<pid>``; the results' ``job_id`` shows it as ``lease:<name>``). Every error is
``{"error": "<one line>"}`` with a 4xx status: 400 a malformed body or parameter (or one
nested too deep), 401 a missing or wrong token, 403 a request that carries a command
(without ``--allow_commands``), 404 an unknown request or point, 409 a point reported
already, 413 a body too large, 429 a request beyond ``--max_requests``, 503 a search that
stopped on an error. With a token (the default), every request (the OpenAPI page too) must
carry ``Authorization: Bearer <token>``; :mod:`.guards` checks it and the body's limits
(:mod:`.limits`) before a route sees the request.

The point and status handlers run on the event loop: they take the point book's lock
for microseconds (the driver holds it no longer) and write at most two small files, less
than a hop to a thread pool costs; ``POST /requests`` (a search to load, a strategy to
build) runs in FastAPI's thread pool. Samplers and generators compute in threads of their
own and each driver in its own, so the API answers while they work.

The three calls a worker makes for every point (``GET .../points``, ``PUT .../points/<id>``,
``GET /requests/<id>``) are :class:`Direct` routes: each reads its path, query and body
with the pydantic models that also write its OpenAPI entry (:func:`parameters`,
``openapi_extra``), and answers with orjson: FastAPI's own parameter solving and response
handling cost 0.15 ms of CPU a call (the ASGI app alone: 0.24 ms a report against 0.09).
The response models are for the OpenAPI page.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Literal

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from hpsearch.service.api_error import ApiError
from hpsearch.service.guards import BodyLimits, TokenCheck, error_response
from hpsearch.service.limits import MAX_POINTS_AHEAD
from hpsearch.service.points import PointStatus
from hpsearch.service.requests import Registry

Number = int | float


class CreateRequest(BaseModel):
    """A search (a search file's settings as JSON; ``script`` and ``metrics`` may be left
    out: a served search reports one ``loss``) and iDDS's two numbers."""

    model_config = ConfigDict(extra="forbid", strict=True)
    search: dict[str, Any]
    max_points: int | None = Field(None, ge=1, description="trial budget (default: the "
                                   "search's num_trials; a grid: all of it)")
    num_points_per_generation: int | None = Field(
        None, ge=1, le=MAX_POINTS_AHEAD,
        description=f"new points kept ready (default 10, at most {MAX_POINTS_AHEAD})")


class Created(BaseModel):
    request_id: int


class ResumeFrom(BaseModel):
    """The point a point continues (hyperband, bohb, pbt) and its run's output directory."""

    id: int
    out_dir: str


class PointOut(BaseModel):
    id: int
    params: dict[str, Any]
    status: PointStatus
    loss: float | None
    run_id: str
    resume_from: ResumeFrom | None


class PointReport(BaseModel):
    """Exactly one of ``loss`` (the objective's value, for a search whose only metric it
    is), ``metrics`` (every metric of the search) or ``failure`` (why the point failed)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    loss: float | None = Field(None, allow_inf_nan=False)
    metrics: dict[str, Number | list[Number]] | None = None
    failure: str | None = None

    @model_validator(mode="after")
    def _one(self) -> PointReport:
        given = [k for k in ("loss", "metrics", "failure") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of loss, metrics, failure, e.g. "
                             '{"loss": 0.25}')
        for name, value in (self.metrics or {}).items():
            for number in value if isinstance(value, list) else [value]:
                if isinstance(number, float) and not abs(number) < float("inf"):
                    raise ValueError(f"metric {name!r} must be finite, not {number}")
        return self


class RequestStatus(BaseModel):
    request_id: int
    out_dir: str
    algorithm: str
    objective: str
    direction: Literal["minimize", "maximize"]
    max_points: int | None
    num_points_per_generation: int
    lease_seconds: float
    points: dict[str, int] = Field(description="counts by status")
    best: PointOut | None
    max_points_reached: bool
    done: bool = Field(description="the search's driver ended: no point will come")
    exit_status: int | None
    error: str | None = Field(description="why the search stopped, when it failed")
    generator: dict[str, Any] | None = Field(description="algorithm external: calls, "
                                             "failures in a row, retry_in, the last call")


class ErrorOut(BaseModel):
    error: str


class RequestPath(BaseModel):
    rid: int


class PointPath(RequestPath):
    point_id: int


class PointsQuery(BaseModel):
    status: PointStatus | None = Field(None, description="new: hand the points out")
    limit: int | None = Field(None, ge=1, description="at most this many points")


#: the header a worker names itself in
WORKER_HEADER = "X-Hpsearch-Worker"
_WORKER_PARAMETER = {"name": WORKER_HEADER, "in": "header", "required": False,
                     "schema": {"type": "string"}, "description": "the worker's name"}


def parameters(path: type[BaseModel], query: type[BaseModel] | None = None,
               worker: bool = False) -> list[dict[str, Any]]:
    """The OpenAPI parameters of a :class:`Direct` route: the fields of its path (and
    query) model, and the worker's header when it takes one."""
    out = []
    for model, where in ((path, "path"), (query, "query")):
        schema = model.model_json_schema() if model else {"properties": {}}
        out += [{"name": name, "in": where, "required": name in schema.get("required", ()),
                 "schema": field} for name, field in schema["properties"].items()]
    return [*out, _WORKER_PARAMETER] if worker else out


class Direct(APIRoute):
    """A route whose endpoint takes the Request and returns the Response itself (FastAPI's
    hook for custom handling, :meth:`APIRoute.get_route_handler`): it validates with
    :func:`valid` and the models of its ``openapi_extra``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.endpoint


def valid(model: type[BaseModel], data: Any) -> Any:
    """``data`` as ``model`` (ApiError 400 with FastAPI's one line when it is not)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, _one_line(exc.errors(include_url=False))) from None


async def json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError as exc:
        raise ApiError(400, f"the body is not valid JSON ({getattr(exc, 'msg', exc)})") \
            from None


def answer(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status, media_type="application/json")


def _one_line(errors: Sequence[Any]) -> str:
    err = errors[0]
    where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
    message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if err.get("type") == "json_invalid":
        return f"the body is not valid JSON ({err.get('ctx', {}).get('error', message)})"
    got = err.get("input")
    shown = "" if err.get("type") in ("missing", "value_error") or got is None else \
        f" (got {json.dumps(got, default=str)[:80]})"
    return f"{where + ': ' if where else ''}{message}{shown}"


def make_app(registry: Registry, token: str | None) -> Any:
    """The ASGI application over ``registry``, behind the body's limits and (``token``)
    the token check."""
    app = FastAPI(title="hpsearch", summary="Hyperparameter points over HTTP: iDDS's HPO "
                  "workflow on an hpsearch journal", version="1",
                  responses={status: {"model": ErrorOut}
                             for status in (400, 401, 404, 409, 413)})

    @app.exception_handler(ApiError)
    def _api_error(_request: Request, exc: ApiError) -> Response:
        return error_response(exc.status, exc.message)

    @app.exception_handler(RequestValidationError)
    def _invalid(_request: Request, exc: RequestValidationError) -> Response:
        return error_response(400, _one_line(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(exc.status_code, str(exc.detail))

    def worker_of(request: Request) -> str:
        return request.headers.get(WORKER_HEADER) or (
            request.client.host if request.client else "?")

    @app.post("/requests", status_code=201, response_model=Created,
              responses={status: {"model": ErrorOut} for status in (403, 429)})
    def create_request(body: CreateRequest) -> dict[str, int]:
        """Start a new search in ``<out_dir>/requests/<id>/`` (403: it carries a command or
        a file the service was not started to allow, 429: ``--max_requests`` are live)."""
        return {"request_id": registry.create(body.model_dump())}

    @app.get("/requests", response_model=list[RequestStatus])
    async def list_requests() -> Response:
        return answer([registry.requests[rid].status() for rid in sorted(registry.requests)])

    async def request_status(request: Request) -> Response:
        """Counts by status, the best point, whether max_points is reached."""
        path = valid(RequestPath, request.path_params)
        return answer(registry.get(path.rid).status())

    async def get_points(request: Request) -> Response:
        """Points by status (all without ``status``); ``status=new`` hands them out: they
        are leased to the caller and come back ``running``."""
        path = valid(RequestPath, request.path_params)
        query = valid(PointsQuery, dict(request.query_params))
        served = registry.get(path.rid)
        if query.status == "new":
            return answer(served.lease(query.limit, worker_of(request)))
        return answer(served.book.list(query.status, query.limit))

    async def update_point(request: Request) -> Response:
        """Report a point: its loss, its metrics, or its failure (once)."""
        path = valid(PointPath, request.path_params)
        body = valid(PointReport, await json_body(request))
        return answer(registry.get(path.rid).report(path.point_id, body.model_dump(),
                                                    worker_of(request)))

    report_body = {"required": True, "content": {"application/json": {
        "schema": PointReport.model_json_schema()}}}
    for path, method, endpoint, model, extra in (
            ("/requests/{rid}", "GET", request_status, RequestStatus,
             {"parameters": parameters(RequestPath)}),
            ("/requests/{rid}/points", "GET", get_points, list[PointOut],
             {"parameters": parameters(RequestPath, PointsQuery, worker=True)}),
            ("/requests/{rid}/points/{point_id}", "PUT", update_point, PointOut,
             {"parameters": parameters(PointPath, worker=True), "requestBody": report_body})):
        # on the app's own router: an included router matched each call through a layer
        # that rebuilt the route's context every time
        app.router.add_api_route(path, endpoint, methods=[method], response_model=model,
                                 openapi_extra=extra, route_class_override=Direct)
    guarded = BodyLimits(app)
    return guarded if token is None else TokenCheck(guarded, token)
