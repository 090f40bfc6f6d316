"""The semantic diffusion model (paper sections 3.3-3.5).

* :mod:`gesco.diffusion.unet`: the SPADE-conditioned U-Net and its config.
* :mod:`gesco.diffusion.gaussian`: the forward process, posterior, learned-range variance
  and the hybrid loss (Eq. 4-10).
* :mod:`gesco.diffusion.guidance`: classifier-free guidance (Eq. 13) as a denoiser.
* :mod:`gesco.diffusion.samplers`: ancestral, respaced, DDIM and DPM-Solver++ (ODE and SDE) samplers.
* :mod:`gesco.diffusion.checkpoint`: safetensors + JSON checkpoints.
* :mod:`gesco.diffusion.pipeline`: maps in, images out.
"""
