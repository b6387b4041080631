"""The Open Inference Protocol's JSON objects (KServe V2 REST), as pydantic models.

Requests ignore fields they do not know (clients send model_name, custom parameters):
the protocol lets a server skip what it does not use. Types are strict where a lax
reading would change a value (a shape of true, a size of "16").
"""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

Size = Annotated[StrictInt, Field(ge=0)]


class Loose(BaseModel):
    """Base of the request objects: unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")


class InputParameters(Loose):
    binary_data_size: Size | None = None
    """Bytes of this input after the JSON header (binary tensor extension)."""


class RequestInput(Loose):
    name: str
    shape: list[Size]
    datatype: str
    parameters: InputParameters | None = None
    data: Any = None
    """The elements, row-major, flat or nested; absent when sent as binary data."""


class OutputParameters(Loose):
    binary_data: StrictBool | None = None


class RequestOutput(Loose):
    name: str
    parameters: OutputParameters | None = None


class RequestParameters(Loose):
    binary_data_output: StrictBool | None = None
    """Every output as binary data unless an output says otherwise."""


class InferenceRequest(Loose):
    """POST /v2/models/{name}[/versions/{version}]/infer: the JSON object (or header)."""

    id: str | None = None
    parameters: RequestParameters | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None


# ----- responses -----


class ResponseOutput(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, Any] | None = None
    data: list[float] | list[int] | None = None


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[ResponseOutput]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class ServerLive(BaseModel):
    live: bool


class ServerReady(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class ProtocolError(BaseModel):
    """Every refusal on /v2: {"error": message}."""

    error: str
