"""Services and tasks as desired state, kept true by a reconciler (DESIGN.md).

The orchestrator stores services and tasks in the state backend, in the shapes of the
Docker Engine API's `Service`, `Task` and `Node` objects, and drives each node's engine
through the engine interface (`portside.engine.interface.EngineAPI`), in managed mode.
"""
