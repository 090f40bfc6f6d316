"""Pydantic models shared by the HTTP APIs of the sender and the receiver."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class BitBudget(BaseModel):
    """The bits and channel uses of one transmission (one line of the bit-budget log).

    Built from :func:`gesco.link.budget_record`; ``docs/services.md`` describes each field.
    """

    id: str = Field(description="Transmission / job id.")
    time: str = Field(description="When this record was made (ISO 8601, UTC): by the channel at transmission in the log, "
                                  "by the sender or the receiver in their replies.")
    height: int = Field(description="Height H of the transmitted maps (the model resolution), in pixels.")
    width: int = Field(description="Width W of the transmitted maps, in pixels.")
    class_space: str = Field(description="Class space of the label ids (e.g. 'cityscapes').")
    present_classes: list[int] = Field(description="Ids of the classes present in the image, i.e. the maps sent (paper section 3.2).")
    has_edges: bool = Field(description="Whether an instance-edge map was sent after the class maps.")
    maps: int = Field(description="Number of maps sent: len(present_classes) + has_edges.")
    codec: str = Field(description="Map codec that coded the payload ('contour', 'downsample', ...).")
    codec_params: dict[str, int | str] = Field(description="The codec's non-default parameters (e.g. {'factor': 4}).")
    payload_bits: int = Field(description="Exact payload size: 8 * len(payload).")
    header_bits: int = Field(description=(
        "Exact header size: the lean link header's bits (gesco.codecs.link_header: frame number, shape, present "
        "classes, codec, power scale, payload length; not the id, class space or simulation-only fields)."))
    appearance_bits: int = Field(0, description=(
        "Information bits of the appearance side channel (beyond the paper; 0 when off): 3 x bits per colour, "
        "one colour ('mean') or one per present class ('classes')."))
    appearance_channel_uses: int = Field(0, description="Real symbols the appearance side channel used: its bits "
                                         "x its repeat (included in channel_uses).")
    appearance: dict[str, Any] | None = Field(None, description="The appearance side channel's settings "
                                              "{'mode', 'bits', 'repeat'}; null when off (the paper's setting).")
    total_bits: int = Field(description="payload_bits + header_bits + appearance_bits.")
    bits_per_pixel: float | None = Field(description="total_bits / (H * W).")
    channel_uses: int = Field(description="Real symbols sent over the channel (one per transmitted map element, plus "
                              "appearance_channel_uses).")
    channel_uses_per_pixel: float | None = Field(description="channel_uses / (H * W); sending the RGB image itself uses 3.")
    png_bits: int = Field(description="Size of the same image as PNG (compression 9) at H x W, in bits.")
    jpeg_bits: int = Field(description="Size of the same image as JPEG at jpeg_quality, at H x W, in bits.")
    jpeg_quality: int = Field(description="JPEG quality used for jpeg_bits (1-100).")
    reduction_png_pct: float | None = Field(description="100 * (1 - total_bits / png_bits): bits saved against PNG, in %.")
    reduction_jpeg_pct: float | None = Field(description="100 * (1 - total_bits / jpeg_bits): bits saved against JPEG, in %.")
    psnr_db: float = Field(description="Requested channel PSNR, Eq. (1): 10 log10(P / sigma^2), in dB.")
    measured_snr_db: float | None = Field(description="SNR measured on this noise draw: 10 log10(P / mean(noise^2)), in dB.")
    noise_variance: float = Field(description="Noise variance sigma^2 per real symbol in the normalised domain.")
    power_scale: float = Field(description="Power-normalisation scale s (received symbols are multiplied back by s).")
    channel: str = Field(description="Channel model applied ('awgn', 'authors-code', 'rayleigh', 'rayleigh-nocsi', 'tdl').")
    channel_params: dict[str, Any] = Field(
        default_factory=dict,
        description="The channel model's parameters as applied (defaults filled in), "
                    "e.g. {'block_length': 1024, 'equalizer': 'mmse', 'csi': True}.",
    )


class UploadReport(BaseModel):
    """How the sender prepared the upload: aspect-ratio handling and, for a segmented
    upload, how sure the segmenter was (built by :func:`gesco.link.upload_report`)."""

    source_size: list[int] = Field(description="[h, w] of the uploaded image, in pixels.")
    aspect: str = Field(description="How another aspect ratio is fitted to the model: 'crop' (centre crop), "
                        "'letterbox' (scaled to fit, black bars / label 0) or 'stretch' (GESCO_SENDER_ASPECT).")
    aspect_adjusted: bool = Field(description="The upload's aspect ratio differed from the model's, so `aspect` changed what was sent.")
    source_box: list[int] | None = Field(description="[top, left, bottom, right) of the upload that was kept.")
    content_box: list[int] | None = Field(description="[top, left, bottom, right) of the model-size frame holding the upload.")
    segmented: bool = Field(description="The label map came from the sender's segmenter (none was uploaded).")
    domain_scored: bool = Field(description="The segmenter's confidence could be measured (a logits model).")
    domain_score: float | None = Field(description="Mean max-softmax of the segmenter over the upload's pixels, in [1/C, 1].")
    confident_fraction: float | None = Field(description="Fraction of the upload's pixels with max-softmax >= 0.9.")
    domain_threshold: float | None = Field(description="domain_score below this is out of domain (GESCO_SENDER_DOMAIN_THRESHOLD).")
    out_of_domain: bool = Field(description="The segmenter does not recognise the upload: the generated image will not resemble it.")
    edges: Literal["uploaded", "derived", "none"] | None = Field(
        None, description="Which instance-edge map was sent: 'uploaded' (the instance map sent with the label map), "
        "'derived' (connected components of the thing classes of the label map; touching instances of one class "
        "merge) or 'none'; null for a job from a sender that did not say.")
    notes: list[str] = Field(description="What the user should know: the aspect handling, the out-of-domain warning.")
