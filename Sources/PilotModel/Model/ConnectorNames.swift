/// The connector's parameter groups, named once. A group's parameters are named `<group>/<weight>`
/// (`prefix(_:)` is `<group>/`).
///
/// Pilot's task adapter has two names on purpose: in stage 1 a client trains its one task adapter
/// ψt as `taskAdapter`; it sends it, and stage 2 holds every task's aggregated adapter, in the slot of
/// its task, `taskAdapters(t)`. The strategy moves ψt between the two (`PilotStrategy`).
public enum ConnectorNames {
    /// The plain LLaVA MLP connector (the base model's, and the single-stage methods').
    public static let mlp = "connector/mlp"
    /// Stage 1's task adapter ψt.
    public static let taskAdapter = "connector/task_adapter"
    /// The client adapter ψs.
    public static let clientAdapter = "connector/client_adapter"
    /// Stage 2's adapter of task t (the aggregated ψ̄t of Eq. 10).
    public static func taskAdapters(_ t: Int) -> String { taskAdaptersRoot + "/\(t)" }
    public static let taskAdaptersRoot = "connector/task_adapters"
    /// Stage 2's cross-task adapters (one group), and the one standing for task t.
    public static let crossTaskAdapters = "connector/cross_task_adapters"
    public static func crossTaskAdapter(_ t: Int) -> String { crossTaskAdapters + "/\(t)" }
    /// The CT-MoA router, and its one weight.
    public static let router = "connector/router"
    public static let routerWeight = router + "/weight"
    /// Every connector parameter's name starts with this.
    public static let root = "connector/"

    /// `<group>/`: what every parameter name of `group` starts with.
    public static func prefix(_ group: String) -> String { group + "/" }
}
