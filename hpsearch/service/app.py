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
                          "loss": null, "run_id": "000000-5be1f0a2"}, ...]
    PUT  .../points/0   {"loss": 0.231} | {"metrics": {"val_loss": 0.231, "val_acc": 0.93}}
                        | {"failure": "CUDA out of memory"}   -> the point, as reported

A worker names itself in the ``X-Hpsearch-Worker`` header (the client sends
``<host>:<pid>``; the results' ``job_id`` shows it as ``lease:<name>``). Every error is
``{"error": "<one line>"}`` with a 4xx status: 400 a malformed body or parameter, 401 a
missing or wrong token, 404 an unknown request or point, 409 a point reported already,
503 a search that stopped on an error. With a token, every request (the OpenAPI page too)
must carry ``Authorization: Bearer <token>``.

The point and status handlers run on the event loop: they take the point book's lock
for microseconds (the driver holds it no longer) and write at most two small files, less
than a hop to a thread pool costs; ``POST /requests`` (a search to load, a strategy to
build) runs in FastAPI's thread pool. Samplers and generators compute in threads of their
own and each driver in its own, so the API answers while they work. Answers are written
as they are (``JSONResponse``); the response models are for the OpenAPI page.
"""

from __future__ import annotations

import hmac
import json
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from hpsearch.service.api_error import ApiError
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
        None, ge=1, description="new points kept ready (default 10)")


class Created(BaseModel):
    request_id: int


class PointOut(BaseModel):
    id: int
    params: dict[str, Any]
    status: PointStatus
    loss: float | None
    run_id: str


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


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _one_line(exc: RequestValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
    message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if err.get("type") == "json_invalid":
        return f"the body is not valid JSON ({err.get('ctx', {}).get('error', message)})"
    got = err.get("input")
    shown = "" if err.get("type") in ("missing", "value_error") or got is None else \
        f" (got {json.dumps(got, default=str)[:80]})"
    return f"{where + ': ' if where else ''}{message}{shown}"


class TokenCheck:
    """ASGI middleware: every HTTP request must carry ``Authorization: Bearer <token>``."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                reply = _error(401, "this service needs a token: send the header "
                               "'Authorization: Bearer <token>' (Client(url, token=...))")
                await reply(scope, receive, send)
                return
        await self.app(scope, receive, send)


def make_app(registry: Registry, token: str | None) -> Any:
    """The ASGI application over ``registry`` (behind the token check when ``token``)."""
    app = FastAPI(title="hpsearch", summary="Hyperparameter points over HTTP: iDDS's HPO "
                  "workflow on an hpsearch journal", version="1",
                  responses={400: {"model": ErrorOut}, 404: {"model": ErrorOut},
                             409: {"model": ErrorOut}})

    @app.exception_handler(ApiError)
    def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message)

    @app.exception_handler(RequestValidationError)
    def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, _one_line(exc))

    @app.exception_handler(StarletteHTTPException)
    def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.post("/requests", status_code=201, response_model=Created)
    def create_request(body: CreateRequest) -> dict[str, int]:
        """Start a new search in ``<out_dir>/requests/<id>/``."""
        return {"request_id": registry.create(body.model_dump())}

    @app.get("/requests", response_model=list[RequestStatus])
    async def list_requests() -> JSONResponse:
        return JSONResponse([registry.requests[rid].status()
                             for rid in sorted(registry.requests)])

    @app.get("/requests/{rid}", response_model=RequestStatus)
    async def request_status(rid: int) -> JSONResponse:
        """Counts by status, the best point, whether max_points is reached."""
        return JSONResponse(registry.get(rid).status())

    @app.get("/requests/{rid}/points", response_model=list[PointOut])
    async def get_points(rid: int, request: Request,
                   status: PointStatus | None = None,
                   limit: Annotated[int | None, Query(ge=1)] = None,
                   x_hpsearch_worker: Annotated[str | None, Header()] = None
                   ) -> JSONResponse:
        """Points by status (all without ``status``); ``status=new`` hands them out: they
        are leased to the caller and come back ``running``."""
        served = registry.get(rid)
        if status == "new":
            peer = request.client.host if request.client else "?"
            return JSONResponse(served.lease(limit, x_hpsearch_worker or peer))
        return JSONResponse(served.book.list(status, limit))

    @app.put("/requests/{rid}/points/{point_id}", response_model=PointOut)
    async def update_point(rid: int, point_id: int, request: Request, body: PointReport,
                     x_hpsearch_worker: Annotated[str | None, Header()] = None
                     ) -> JSONResponse:
        """Report a point: its loss, its metrics, or its failure (once)."""
        peer = request.client.host if request.client else "?"
        return JSONResponse(registry.get(rid).report(point_id, body.model_dump(),
                                                     x_hpsearch_worker or peer))

    return app if token is None else TokenCheck(app, token)
