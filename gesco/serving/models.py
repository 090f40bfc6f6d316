"""Pydantic models shared by the HTTP APIs of the sender and the receiver."""

from __future__ import annotations

from pydantic import BaseModel, Field


class BitBudget(BaseModel):
    """The bits and channel uses of one transmission (one line of the bit-budget log).

    Built from :func:`gesco.link.budget_record`; ``docs/services.md`` describes each field.
    """

    id: str = Field(description="Transmission / job id.")
    time: str = Field(description="When this record was made (ISO 8601, UTC): by the channel at transmission in the log, by the sender or the receiver in their replies.")
    height: int = Field(description="Height H of the transmitted maps (the model resolution), in pixels.")
    width: int = Field(description="Width W of the transmitted maps, in pixels.")
    class_space: str = Field(description="Class space of the label ids (e.g. 'cityscapes').")
    present_classes: list[int] = Field(description="Ids of the classes present in the image, i.e. the maps sent (paper section 3.2).")
    has_edges: bool = Field(description="Whether an instance-edge map was sent after the class maps.")
    maps: int = Field(description="Number of maps sent: len(present_classes) + has_edges.")
    codec: str = Field(description="Map codec that coded the payload ('contour', 'downsample', ...).")
    codec_params: dict[str, int | str] = Field(description="The codec's non-default parameters (e.g. {'factor': 4}).")
    payload_bits: int = Field(description="Exact payload size: 8 * len(payload).")
    header_bits: int = Field(description="Exact header size: every other serialized bit of the frame (simulation-only fields excluded).")
    total_bits: int = Field(description="payload_bits + header_bits.")
    bits_per_pixel: float | None = Field(description="total_bits / (H * W).")
    channel_uses: int = Field(description="Real symbols sent over the channel (one per transmitted map element).")
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
    channel: str = Field(description="Channel preset applied ('awgn' or 'authors-code').")
