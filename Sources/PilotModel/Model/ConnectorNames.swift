/// The connector's parameter groups, named once. A group's parameters are named `<group>/<weight>`
/// (`prefix(_:)` is `<group>/`).
///
/// Pilot's task adapter has two names on purpose: in stage 1 a client trains its one task adapter
/// ψt as `taskAdapter`; stage 2 holds every task's aggregated adapter, in the slot of its task,
/// `taskAdapters(t)`. Outside a stage-1 model ψt always goes by its slot's name (in the update, at
/// the server, in the server state and in the client's state); `slotName` and `stage1Name` are the
/// one place that moves a name between the two.
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

    /// A stage-1 task-adapter parameter's name in task t's slot: `connector/task_adapter/fc1/weight`
    /// → `connector/task_adapters/<t>/fc1/weight`. Other names are returned unchanged.
    public static func slotName(_ name: String, task t: Int) -> String {
        let stage1 = prefix(taskAdapter)
        return name.hasPrefix(stage1) ? prefix(taskAdapters(t)) + name.dropFirst(stage1.count) : name
    }

    /// The stage-1 name of a parameter of task t's slot (the inverse of `slotName`), or nil when
    /// `name` is not in that slot.
    public static func stage1Name(_ name: String, task t: Int) -> String? {
        let slot = prefix(taskAdapters(t))
        return name.hasPrefix(slot) ? prefix(taskAdapter) + name.dropFirst(slot.count) : nil
    }

    /// The task of a name in some task's slot, and the name's part after the slot
    /// (`connector/task_adapters/2/fc1/weight` → (2, "fc1/weight")), or nil.
    public static func slot(of name: String) -> (task: Int, suffix: String)? {
        let root = prefix(taskAdaptersRoot)
        guard name.hasPrefix(root) else { return nil }
        let rest = name.dropFirst(root.count)
        guard let slash = rest.firstIndex(of: "/"), let t = Int(rest[..<slash]), t >= 0 else { return nil }
        return (t, String(rest[rest.index(after: slash)...]))
    }

    /// Whether `name` is one of Pilot's task-adapter parameters (stage 1's or any slot's).
    public static func isTaskAdapter(_ name: String) -> Bool {
        name.hasPrefix(prefix(taskAdapter)) || name.hasPrefix(prefix(taskAdaptersRoot))
    }
}
