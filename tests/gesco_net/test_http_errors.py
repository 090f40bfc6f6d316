"""Statuses of bad uploads (gesco_net.http_errors.input_error), shared by the sender and the viewer."""

from __future__ import annotations

import pytest

from gesco.errors import GescoInputError
from gesco.link import ImageTooLargeError, UnsupportedImageError, decode_image
from gesco_net.http_errors import input_error


@pytest.mark.parametrize(("error", "status"), [
    (UnsupportedImageError("not a PNG or JPEG"), 415),
    (ImageTooLargeError("over the limit"), 413),
    (GescoInputError("unknown class ids [99]"), 422),
])
def test_each_input_error_gets_its_status_and_names_the_field(error, status):
    e = input_error("label", error)
    assert e.status_code == status and e.detail == f"label: {error}"
    assert input_error(None, error).detail == str(error)


def test_a_real_decoder_error_maps_to_415():
    with pytest.raises(GescoInputError) as caught:
        decode_image(b"<html>not an image</html>")
    assert input_error("image", caught.value).status_code == 415
