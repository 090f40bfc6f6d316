"""Colour families per material (RGB, 0-255); each object picks one and jitters it."""


from __future__ import annotations

from gesco.data.synthetic.scene import Colour

# --------------------------------------------------------------------------- colours
# Plausible RGB colour families per material; each object picks one and jitters it.
BUILDING_COLOURS: list[Colour] = [
    (196, 178, 150), (210, 205, 195), (150, 148, 145), (120, 118, 118), (150, 85, 65),
    (215, 195, 130), (190, 160, 160), (165, 180, 185), (95, 90, 85), (225, 220, 210),
    (175, 130, 95), (130, 140, 120)]
CAR_COLOURS: list[Colour] = [
    (225, 225, 225), (28, 28, 32), (170, 172, 175), (105, 108, 112), (35, 55, 115),
    (150, 25, 30), (40, 70, 50), (190, 175, 140), (60, 60, 70), (120, 135, 160)]
CAR_COLOUR_P = [0.2, 0.18, 0.16, 0.12, 0.08, 0.07, 0.04, 0.04, 0.06, 0.05]
BUS_COLOURS: list[Colour] = [(230, 190, 40), (200, 40, 40), (225, 225, 220), (40, 90, 160)]
TRUCK_COLOURS: list[Colour] = [(225, 225, 225), (190, 60, 40), (60, 80, 120), (110, 110, 110)]
SKIN: list[Colour] = [(225, 185, 155), (200, 150, 115), (150, 100, 70), (95, 62, 45)]
PANTS: list[Colour] = [(35, 40, 60), (30, 30, 32), (90, 90, 95), (170, 150, 120), (60, 70, 100)]
SIGN_COLOURS: list[Colour] = [(205, 30, 35), (30, 75, 170), (235, 195, 30), (235, 235, 235)]
LAMP_COLOURS: list[Colour] = [(255, 40, 30), (255, 180, 20), (40, 255, 120)]  # red, amber, green



def scale_colour(c: Colour, k: float) -> Colour:
    return (c[0] * k, c[1] * k, c[2] * k)
