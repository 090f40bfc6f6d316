"""The sender's REST models: the form of ``POST /transmit`` and the replies.

* :class:`TransmitParams`: the multipart form fields besides the files (ranges and
  defaults from :data:`gesco.transmit_fields.FIELDS`, the one table of these settings);
* :class:`TransmitAccepted` (202), :class:`Health` (``GET /healthz``) and
  :class:`ErrorDetail` (every 4xx / 5xx body).

The class names are the schema names in the OpenAPI document
(``tests/services/test_openapi_frozen.py`` pins it).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, create_model, field_validator, model_validator

from gesco.channel import CHANNELS, channel_catalogue, parse_channel_params
from gesco.errors import GescoInputError
from gesco.link import TransmitSettings
from gesco.transmit_fields import FIELDS, RECEIVER_DEFAULTS
from gesco.wire.frames import FRAME_ID_PATTERN, check_frame_id
from gesco_net.models import BitBudget, UploadReport

#: appended to a receiver-resolved setting's description in the form (and the API schema)
RECEIVER_DEFAULT_NOTE = (" Omitted: the receiver's default, its model's recommended sampling when its card has one "
                         "(an imported authors' model: dpmpp-2m-sde, 20 steps, guidance 2), else the default shown.")


#: the registries whose names some settings take (:attr:`gesco.transmit_fields.FieldSpec.registry`)
REGISTRIES: dict[str, Any] = {"gesco.channel.CHANNELS": CHANNELS}


def form_field(name: str) -> tuple[Any, Any]:
    """The form field of transmission setting ``name``: type, choices, default, range and
    description from :data:`gesco.transmit_fields.FIELDS` (the one declaration of these settings).

    The channel's parameters are a JSON object as text (checked against the model's parameters
    by :meth:`TransmitParams._check_channel_params`).
    """
    spec = FIELDS[name]
    if spec.kind is dict:
        text = spec.description.replace("Parameters of the channel model,", "Parameters of the channel model as a JSON object,")
        return str, Field("", description=text + " Unknown parameters are refused (422).")
    allowed = tuple(sorted(REGISTRIES[spec.registry])) if spec.registry else spec.choices
    kind: Any = Literal[allowed] if allowed is not None else spec.kind
    bounds: dict[str, Any] = {} if spec.ge is None else {"ge": spec.ge, "le": spec.le}
    if spec.kind is float:
        bounds["allow_inf_nan"] = False
    description = spec.description + (RECEIVER_DEFAULT_NOTE if spec.receiver_default else "")
    if name == "channel":  # the models and their one-line summaries, from the channel package
        description = (f"{spec.description.rstrip('.')}: {channel_catalogue()}. 'authors-code' only knows its "
                       "nominal PSNRs 1, 5, 10, 15, 20, 25, 30, 100 dB.")
    return kind, Field(spec.default, description=description, **bounds)


class TransmitForm(BaseModel):
    """The part of the form that is not a transmission setting (the job id), the checks that
    span fields, and the conversion to :class:`~gesco.link.TransmitSettings`."""

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
    def _check_channel_params(self) -> TransmitForm:
        parse_channel_params(self.channel, self.channel_params)  # ChannelParameterError (a ValueError) -> 422
        return self

    def transmit_settings(self) -> TransmitSettings:
        values = {name: getattr(self, name) for name in FIELDS}
        values["channel_params"] = parse_channel_params(self.channel, self.channel_params)
        return TransmitSettings(**values)

    def receiver_resolved(self) -> list[str]:
        """The :data:`~gesco.transmit_fields.RECEIVER_DEFAULTS` the client left out: the sender
        leaves them unset on the wire, and the receiver applies its model's default."""
        return [name for name in RECEIVER_DEFAULTS if name not in self.model_fields_set]


#: Parameters of one transmission (multipart form fields besides the files): one field per
#: entry of :data:`gesco.transmit_fields.FIELDS` (:func:`form_field`), and the job id.
TransmitParams = create_model(
    "TransmitParams", __base__=TransmitForm,
    __doc__="Parameters of one transmission (multipart form fields besides the files).",
    **{name: form_field(name) for name in FIELDS},
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
