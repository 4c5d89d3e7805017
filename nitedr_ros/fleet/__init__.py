"""``nitedr fleet derain``: ``nitedr bag derain`` over a whole archive of bags, on a Ray cluster or a local
process pool.

- :mod:`.jobs`: find the bags under a folder (or in a list file) and plan one job per bag (output path = the
  input's relative path under OUTPUT_DIR; fingerprint of the input; the settings digest).
- :mod:`.manifest`: the resumable record in OUTPUT_DIR (JSON lines; a second run skips finished bags and
  retries failed ones).
- :mod:`.worker`: :class:`~.worker.BagWorker`, which holds the pipeline (its engines) open across bags and
  runs exactly ``derain_bag`` on each; the same class is the Ray actor and the local pool's worker.
- :mod:`.runners`: the local process pool and the Ray actor pool.
- :mod:`.report`: the fleet report (Markdown + JSON: per bag, totals, throughput, failures by reason).
- :mod:`.run`: ``derain_fleet``, which ties them together with one progress bar.

Ray is optional (``pip install -e '.[fleet]'``); ``address='local'`` needs no Ray.
"""
