"""The evaluation report: statistics per row and PSNR, tables (markdown, CSV, JSON), plots, sample grids.

Modules, by role: :mod:`~gesco.evaluate.report.statistics` (the numbers per row and PSNR),
:mod:`~gesco.evaluate.report.format` and :mod:`~gesco.evaluate.report.tables` (markdown
cells, tables and sections), :mod:`~gesco.evaluate.report.digital` (the digital link's
section), :mod:`~gesco.evaluate.report.plots` (figures, sample grids),
:mod:`~gesco.evaluate.report.studies` (the sampler study's choice and each study's
markdown) and :mod:`~gesco.evaluate.report.write` (the files, :func:`write_report`).

Everything is computed from the results store (:class:`gesco.evaluate.store.ResultStore`)
and the run's plan (its ``"plan"`` meta entry), so ``gesco evaluate --report-only``
rebuilds the report of an interrupted or finished run without sampling anything.

Statistics of a row at one PSNR over its ``n`` scenes:

* mIoU, LPIPS, SSIM and the colour errors (``mean_colour_error``, ``class_colour_error``:
  :mod:`gesco.evaluate.metrics.colour`, generated vs sent image, 0-255 units): mean and
  sample standard deviation (``ddof = 1``) of the per-image values (the paper's "mean +-
  std"); mIoU also pooled over all images (one confusion matrix for the whole set, the
  Cityscapes benchmark's definition) in the CSV / JSON;
* the per-class colour error: for each class, mean and std over the images whose sent
  label map has at least ``MIN_CLASS_PIXELS`` pixels of it (JSON ``class_colour``,
  ``colour_per_class.csv``, the report's per-class tables). Results stored before the
  colour errors existed have none: their cells read "n/a" (a cell averaged over fewer
  images than the row has says ``(n=k)``);
* the Frechet distance between the row's images and the same scenes' real images, one
  number per set (no +-), in the feature space named in the table title: the standard FID
  only with the user's Inception weights, otherwise "FD-AlexNet-relu5 (substitute; not
  FID)". With ``n`` images in ``D`` dimensions the covariances have rank at most
  ``n - 1``; for ``n <= D`` the distance is strongly biased upwards and only comparable
  between rows with the same ``n``;
* bits, channel uses (and per pixel), reference image sizes, the downsampling factor,
  sampling seconds per image: means.
"""

from __future__ import annotations

from gesco.evaluate.report.statistics import ResultIndex, summarise
from gesco.evaluate.report.studies import FD_REL_TOLERANCE, few_step_verdicts, sampler_choice
from gesco.evaluate.report.write import write_report

__all__ = ["FD_REL_TOLERANCE", "ResultIndex", "few_step_verdicts", "sampler_choice", "summarise", "write_report"]
