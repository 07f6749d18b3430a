"""What a trained net learned: hidden-unit probes (:mod:`.probes`), feature sharing (:mod:`.sharing`),
learning curves (:mod:`.curves`) and the control experiments' diagnostics — live units, gradient
norms, stuck runs, shuffled targets (:mod:`.diagnostics`). Imports only the engine and problems."""
