"""Running experiments: the command line and its checks (:mod:`.cli`, :mod:`.checks`, :mod:`.errors`),
the experiment driver (:mod:`.experiment`), the seed-batched unit runner and its cache
(:mod:`.runner`, :mod:`.store`), output folders (:mod:`.outputs`), provenance, project paths, loading
saved results (:mod:`.results`) and re-training one saved run (:mod:`.retraining`)."""
