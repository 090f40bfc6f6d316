from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AckStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACK_STATUS_UNSPECIFIED: _ClassVar[AckStatus]
    ACK_STATUS_ACCEPTED: _ClassVar[AckStatus]
    ACK_STATUS_REJECTED: _ClassVar[AckStatus]
ACK_STATUS_UNSPECIFIED: AckStatus
ACK_STATUS_ACCEPTED: AckStatus
ACK_STATUS_REJECTED: AckStatus

class CodecParams(_message.Message):
    __slots__ = ("factor", "inner", "upsample")
    FACTOR_FIELD_NUMBER: _ClassVar[int]
    INNER_FIELD_NUMBER: _ClassVar[int]
    UPSAMPLE_FIELD_NUMBER: _ClassVar[int]
    factor: int
    inner: str
    upsample: str
    def __init__(self, factor: _Optional[int] = ..., inner: _Optional[str] = ..., upsample: _Optional[str] = ...) -> None: ...

class TransmitParams(_message.Message):
    __slots__ = ("psnr_db", "channel", "sampler", "steps", "guidance_scale", "seed", "fds", "channel_params")
    class ChannelParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PSNR_DB_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SAMPLER_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    FDS_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_PARAMS_FIELD_NUMBER: _ClassVar[int]
    psnr_db: float
    channel: str
    sampler: str
    steps: int
    guidance_scale: float
    seed: int
    fds: bool
    channel_params: _containers.ScalarMap[str, str]
    def __init__(self, psnr_db: _Optional[float] = ..., channel: _Optional[str] = ..., sampler: _Optional[str] = ..., steps: _Optional[int] = ..., guidance_scale: _Optional[float] = ..., seed: _Optional[int] = ..., fds: _Optional[bool] = ..., channel_params: _Optional[_Mapping[str, str]] = ...) -> None: ...

class UploadInfo(_message.Message):
    __slots__ = ("source_height", "source_width", "aspect", "aspect_adjusted", "source_box", "content_box", "segmented", "domain_scored", "domain_score", "confident_fraction", "domain_threshold", "out_of_domain", "notes", "edges")
    SOURCE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    ASPECT_FIELD_NUMBER: _ClassVar[int]
    ASPECT_ADJUSTED_FIELD_NUMBER: _ClassVar[int]
    SOURCE_BOX_FIELD_NUMBER: _ClassVar[int]
    CONTENT_BOX_FIELD_NUMBER: _ClassVar[int]
    SEGMENTED_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_SCORED_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENT_FRACTION_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    OUT_OF_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    source_height: int
    source_width: int
    aspect: str
    aspect_adjusted: bool
    source_box: _containers.RepeatedScalarFieldContainer[int]
    content_box: _containers.RepeatedScalarFieldContainer[int]
    segmented: bool
    domain_scored: bool
    domain_score: float
    confident_fraction: float
    domain_threshold: float
    out_of_domain: bool
    notes: _containers.RepeatedScalarFieldContainer[str]
    edges: str
    def __init__(self, source_height: _Optional[int] = ..., source_width: _Optional[int] = ..., aspect: _Optional[str] = ..., aspect_adjusted: _Optional[bool] = ..., source_box: _Optional[_Iterable[int]] = ..., content_box: _Optional[_Iterable[int]] = ..., segmented: _Optional[bool] = ..., domain_scored: _Optional[bool] = ..., domain_score: _Optional[float] = ..., confident_fraction: _Optional[float] = ..., domain_threshold: _Optional[float] = ..., out_of_domain: _Optional[bool] = ..., notes: _Optional[_Iterable[str]] = ..., edges: _Optional[str] = ...) -> None: ...

class AppearanceParams(_message.Message):
    __slots__ = ("mode", "bits", "repeat")
    MODE_FIELD_NUMBER: _ClassVar[int]
    BITS_FIELD_NUMBER: _ClassVar[int]
    REPEAT_FIELD_NUMBER: _ClassVar[int]
    mode: str
    bits: int
    repeat: int
    def __init__(self, mode: _Optional[str] = ..., bits: _Optional[int] = ..., repeat: _Optional[int] = ...) -> None: ...

class SemanticFrame(_message.Message):
    __slots__ = ("id", "height", "width", "num_classes", "class_space", "class_ids", "has_edges", "codec", "codec_params", "payload", "power_scale", "png_bits", "jpeg_bits", "jpeg_quality", "transmit", "upload", "appearance", "appearance_bits")
    ID_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    NUM_CLASSES_FIELD_NUMBER: _ClassVar[int]
    CLASS_SPACE_FIELD_NUMBER: _ClassVar[int]
    CLASS_IDS_FIELD_NUMBER: _ClassVar[int]
    HAS_EDGES_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    CODEC_PARAMS_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    POWER_SCALE_FIELD_NUMBER: _ClassVar[int]
    PNG_BITS_FIELD_NUMBER: _ClassVar[int]
    JPEG_BITS_FIELD_NUMBER: _ClassVar[int]
    JPEG_QUALITY_FIELD_NUMBER: _ClassVar[int]
    TRANSMIT_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_FIELD_NUMBER: _ClassVar[int]
    APPEARANCE_FIELD_NUMBER: _ClassVar[int]
    APPEARANCE_BITS_FIELD_NUMBER: _ClassVar[int]
    id: str
    height: int
    width: int
    num_classes: int
    class_space: str
    class_ids: _containers.RepeatedScalarFieldContainer[int]
    has_edges: bool
    codec: str
    codec_params: CodecParams
    payload: bytes
    power_scale: float
    png_bits: int
    jpeg_bits: int
    jpeg_quality: int
    transmit: TransmitParams
    upload: UploadInfo
    appearance: AppearanceParams
    appearance_bits: bytes
    def __init__(self, id: _Optional[str] = ..., height: _Optional[int] = ..., width: _Optional[int] = ..., num_classes: _Optional[int] = ..., class_space: _Optional[str] = ..., class_ids: _Optional[_Iterable[int]] = ..., has_edges: _Optional[bool] = ..., codec: _Optional[str] = ..., codec_params: _Optional[_Union[CodecParams, _Mapping]] = ..., payload: _Optional[bytes] = ..., power_scale: _Optional[float] = ..., png_bits: _Optional[int] = ..., jpeg_bits: _Optional[int] = ..., jpeg_quality: _Optional[int] = ..., transmit: _Optional[_Union[TransmitParams, _Mapping]] = ..., upload: _Optional[_Union[UploadInfo, _Mapping]] = ..., appearance: _Optional[_Union[AppearanceParams, _Mapping]] = ..., appearance_bits: _Optional[bytes] = ...) -> None: ...

class ChannelReport(_message.Message):
    __slots__ = ("psnr_db", "noise_variance", "measured_snr_db", "payload_bits", "header_bits", "channel_uses", "channel", "power_scale", "appearance_bits", "appearance_channel_uses")
    PSNR_DB_FIELD_NUMBER: _ClassVar[int]
    NOISE_VARIANCE_FIELD_NUMBER: _ClassVar[int]
    MEASURED_SNR_DB_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_BITS_FIELD_NUMBER: _ClassVar[int]
    HEADER_BITS_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_USES_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    POWER_SCALE_FIELD_NUMBER: _ClassVar[int]
    APPEARANCE_BITS_FIELD_NUMBER: _ClassVar[int]
    APPEARANCE_CHANNEL_USES_FIELD_NUMBER: _ClassVar[int]
    psnr_db: float
    noise_variance: float
    measured_snr_db: float
    payload_bits: int
    header_bits: int
    channel_uses: int
    channel: str
    power_scale: float
    appearance_bits: int
    appearance_channel_uses: int
    def __init__(self, psnr_db: _Optional[float] = ..., noise_variance: _Optional[float] = ..., measured_snr_db: _Optional[float] = ..., payload_bits: _Optional[int] = ..., header_bits: _Optional[int] = ..., channel_uses: _Optional[int] = ..., channel: _Optional[str] = ..., power_scale: _Optional[float] = ..., appearance_bits: _Optional[int] = ..., appearance_channel_uses: _Optional[int] = ...) -> None: ...

class ReceivedFrame(_message.Message):
    __slots__ = ("header", "symbols", "symbols_shape", "report", "appearance_symbols")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_SHAPE_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    APPEARANCE_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    header: SemanticFrame
    symbols: bytes
    symbols_shape: _containers.RepeatedScalarFieldContainer[int]
    report: ChannelReport
    appearance_symbols: bytes
    def __init__(self, header: _Optional[_Union[SemanticFrame, _Mapping]] = ..., symbols: _Optional[bytes] = ..., symbols_shape: _Optional[_Iterable[int]] = ..., report: _Optional[_Union[ChannelReport, _Mapping]] = ..., appearance_symbols: _Optional[bytes] = ...) -> None: ...

class TransmitAck(_message.Message):
    __slots__ = ("id", "status", "message", "report")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: AckStatus
    message: str
    report: ChannelReport
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[AckStatus, str]] = ..., message: _Optional[str] = ..., report: _Optional[_Union[ChannelReport, _Mapping]] = ...) -> None: ...

class DeliverAck(_message.Message):
    __slots__ = ("id", "status", "message")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: AckStatus
    message: str
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[AckStatus, str]] = ..., message: _Optional[str] = ...) -> None: ...
