"""The sender's REST models: the form of ``POST /transmit`` and the replies.

* :class:`TransmitParams`: the multipart form fields besides the files (ranges and
  defaults from :data:`gesco.transmit_fields.FIELDS`, the one table of these settings);
* :class:`TransmitAccepted` (202), :class:`Health` (``GET /healthz``) and
  :class:`ErrorDetail` (every 4xx / 5xx body).

The class names are the schema names in the OpenAPI document
(``tests/serving/test_openapi_frozen.py`` pins it).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from gesco.channel import CHANNELS, channel_catalogue, parse_channel_params
from gesco.codecs import DEFAULT_CODEC
from gesco.codecs.lossless import LOSSLESS_CODECS
from gesco.diffusion.samplers import SAMPLERS
from gesco.errors import GescoInputError
from gesco.link import TransmitSettings
from gesco.serving.models import BitBudget, UploadReport
from gesco.transmit_fields import FIELDS, default
from gesco.wire.frames import FRAME_ID_PATTERN, check_frame_id

ChannelName = Literal[tuple(sorted(CHANNELS))]  # type: ignore[valid-type]
CodecName = Literal[tuple(sorted(LOSSLESS_CODECS))]  # type: ignore[valid-type]
SamplerName = Literal[SAMPLERS]  # type: ignore[valid-type]


def form_field(name: str) -> Any:
    """The form field of transmission setting ``name``: default, range and description from
    :data:`gesco.transmit_fields.FIELDS` (the one table of these settings)."""
    spec = FIELDS[name]
    bounds = {} if spec.ge is None else {"ge": spec.ge, "le": spec.le}
    if isinstance(spec.default, float):
        bounds["allow_inf_nan"] = False
    return Field(spec.default, description=spec.description, **bounds)


class TransmitParams(BaseModel):
    """Parameters of one transmission (multipart form fields besides the files)."""

    psnr_db: float = form_field("psnr_db")
    channel: ChannelName = Field(
        default("channel"), description="Channel model (docs/channel.md): " + channel_catalogue() + ". 'authors-code' "
        "only knows its nominal PSNRs 1, 5, 10, 15, 20, 25, 30, 100 dB."
    )
    channel_params: str = Field(
        "", description="Parameters of the channel model as a JSON object, e.g. {\"block_length\": 64, "
        "\"equalizer\": \"zf\"} for 'rayleigh' or {\"model\": \"C\", \"delay_spread_ns\": 300} for 'tdl'; "
        "empty = the model's defaults. Unknown parameters are refused (422)."
    )
    codec: CodecName = Field(DEFAULT_CODEC, description="Lossless map codec (the inner codec when downsample > 1).")
    downsample: int = Field(
        1, ge=1, le=64, description="Block-downsampling factor k of the maps before coding (1 = full maps; "
        "k > 1 sends ceil(H/k) x ceil(W/k) maps: fewer bits and channel uses, lossy)."
    )
    guidance_scale: float = form_field("guidance_scale")
    sampler: SamplerName = form_field("sampler")
    steps: int = form_field("steps")
    seed: int = form_field("seed")
    fds: bool = form_field("fds")
    id: str | None = Field(
        None, pattern=f"^{FRAME_ID_PATTERN.pattern}$",
        description="Job id chosen by the client (1-128 letters, digits, '.', '_', '-'; default: a random "
        "128-bit id). Repeating a transmission with the same id and the same files and settings returns the job "
        "stored by the first attempt (a safe retry after a 503 / 504); another input with a stored id is 409."
    )

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_frame_id(value)
            except GescoInputError as e:
                raise ValueError(str(e)) from None
        return value

    @model_validator(mode="after")
    def _check_channel_params(self) -> TransmitParams:
        parse_channel_params(self.channel, self.channel_params)  # ChannelParameterError (a ValueError) -> 422
        return self

    def transmit_settings(self) -> TransmitSettings:
        return TransmitSettings(
            psnr_db=self.psnr_db, channel=self.channel, sampler=self.sampler, steps=self.steps,
            guidance_scale=self.guidance_scale, seed=self.seed, fds=self.fds,
            channel_params=parse_channel_params(self.channel, self.channel_params),
        )


#: the file fields of the form
FILE_FIELDS = ("image", "label", "instance")
#: every field the form accepts (others are refused, 422)
FORM_FIELDS = frozenset(TransmitParams.model_fields) | frozenset(FILE_FIELDS)


class SenderTimings(BaseModel):
    """Seconds spent in each sender stage."""

    decode_s: float = Field(description="Checking and decoding the uploaded files.")
    resize_s: float = Field(description="Resizing to the model resolution.")
    segment_s: float = Field(description="Segmenting the image (0 when a label map was uploaded).")
    encode_s: float = Field(description="One-hot encoding, present classes, coding the maps (section 3.2).")
    reference_s: float = Field(description="Encoding the image as PNG and JPEG for the budget.")
    channel_s: float = Field(description="Channel.Transmit round trip: bits, noise, forwarding, durable store at the receiver.")


class TransmitAccepted(BaseModel):
    """Reply of POST /transmit: the job is stored at the receiver."""

    id: str = Field(description="Transmission / job id.")
    status: Literal["accepted"] = Field(description="Always 'accepted' (the receiver stored the job).")
    result_url: str = Field(description="Receiver URL of the job's status and results (poll it).")
    image_url: str = Field(description="Receiver URL of the generated image once the job is done.")
    segmented: bool = Field(description="True when the label map came from the sender's segmenter.")
    upload: UploadReport = Field(description="Aspect-ratio handling and, for a segmented upload, the segmenter's "
                                 "confidence; `out_of_domain` warns that the result will not resemble the upload.")
    warnings: list[str] = Field(description="Notes the user should read (aspect handling, out-of-domain upload).")
    settings: dict[str, Any] = Field(description="The transmission settings as sent in the frame.")
    budget: BitBudget
    timings: SenderTimings


# no docstrings on these two: a docstring would become the schema's description (OpenAPI frozen)
class Health(BaseModel):
    status: Literal["ok"] = Field(description="The sender is up.")
    version: str = Field(description="gesco version.")
    resolution: list[int] = Field(description="[H, W] that uploads are resized to.")
    class_space: str = Field(description="Class space of the label ids.")
    segmenter: str = Field(description="'ready', or why uploads need a label map.")
    aspect: str = Field(description="How uploads of another aspect ratio are fitted: 'crop', 'letterbox' or 'stretch'.")
    channel_address: str = Field(description="Where frames go (gRPC).")


class ErrorDetail(BaseModel):
    detail: str = Field(description="What went wrong.")
