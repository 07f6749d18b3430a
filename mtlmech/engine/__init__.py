"""The engine: nets (:mod:`.nets`), the two trainers — the PyTorch reference (:mod:`.training`) and the
fused C++ kernel (:mod:`.fused`) — what they share (:mod:`.common`), seeding (:mod:`.seeding`) and
memory guards (:mod:`.resources`). The engine imports nothing else from mtlmech."""
