"""What people read: the markdown report (:mod:`.markdown`), figures (:mod:`.plots`) and the sources
cited (:mod:`.citations`). Reads saved results; never trains."""
