"""The configuration front end: the declared keys (:mod:`.schema`) and the parse of a
resolved configuration into the engine's :class:`~yieldmc.engine.problem.Problem`
(:mod:`.parse`, :func:`~yieldmc.configuration.parse.build_problem`).

Configuration sits above the engine, the couplers and the samplers: it reads their
registries to declare their keys and binds the selected parts; none of them imports it.
"""
