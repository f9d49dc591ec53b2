import PilotCore

/// A task of a scenario: a name and the metric its test split is scored with.
///
/// The five built-in FedMIT tasks (docs/design.md §5) are static members (`FedTask.caption`, …) and keep their
/// metrics. A scenario made by `pilot data scenario` may name its own tasks (`textvqa` scored with
/// `vqa_accuracy`, `docvqa` with `anls`, …): `FedTask(name:metric:)`. A task is identified by its name
/// in files (shards store the name; a custom task's metric is stored next to it, see `Shard`).
public struct FedTask: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The task's name: lowercase letters, digits, `_` and `-`.
    public let rawValue: String
    /// The metric the task is scored with.
    public let metric: MetricKind

    private init(builtin name: String, _ metric: MetricKind) { rawValue = name; self.metric = metric }

    /// Scene captioning (stands for COCO); scored with CIDEr-D against 5 references.
    public static let caption = FedTask(builtin: "caption", .ciderD)
    /// Short-answer visual questions (stands for GQA); exact match after normalisation.
    public static let vqa = FedTask(builtin: "vqa", .exactMatch)
    /// Referring-expression boxes (stands for RefCOCO); Acc@IoU≥0.5.
    public static let grounding = FedTask(builtin: "grounding", .accAtIoU50)
    /// Reading drawn text (stands for OCR-VQA); exact match after normalisation.
    public static let ocr = FedTask(builtin: "ocr", .exactMatch)
    /// Multiple choice needing a textual fact and the image (stands for ScienceQA); letter accuracy, or exact match where the reference is the option's text (task version 2).
    public static let science = FedTask(builtin: "science", .choiceAccuracy)

    /// The five built-in tasks, in their fixed order.
    public static let allCases: [FedTask] = [.caption, .vqa, .grounding, .ocr, .science]

    /// A built-in task by name (nil for any other name).
    public init?(rawValue: String) {
        guard let t = Self.allCases.first(where: { $0.rawValue == rawValue }) else { return nil }
        self = t
    }

    /// A task of the user's: any valid name with any metric. A built-in name keeps its own metric.
    public init(name: String, metric: MetricKind) throws {
        let ok = !name.isEmpty && name.count <= 40 && name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-"
        }
        guard ok else {
            throw PilotError.invalidArgument("task name '\(name)': use 1–40 lowercase letters, digits, '_' or '-' (it names files, e.g. test/\(name).h5)")
        }
        if let b = FedTask(rawValue: name), b.metric != metric {
            throw PilotError.invalidArgument("task '\(name)' is built in and scored with \(b.metric.rawValue), not \(metric.rawValue); give your task another name")
        }
        rawValue = name
        self.metric = metric
    }

    /// True for the five built-in tasks.
    public var isBuiltin: Bool { FedTask(rawValue: rawValue) == self }

    public var description: String { rawValue }

    /// Built-in tasks first in their fixed order, then the others by name.
    public static func < (a: FedTask, b: FedTask) -> Bool {
        let ia = allCases.firstIndex(of: a) ?? allCases.count, ib = allCases.firstIndex(of: b) ?? allCases.count
        return ia != ib ? ia < ib : (a.rawValue, a.metric.rawValue) < (b.rawValue, b.metric.rawValue)
    }

    /// Parses a built-in task name, with an error that lists the valid names.
    public static func parse(_ name: String) throws -> FedTask {
        guard let t = FedTask(rawValue: name.lowercased()) else {
            throw PilotError.invalidArgument("unknown task '\(name)'; expected one of \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return t
    }

    /// A task named in a scenario manifest or a shard: built in, or with the metric the file gives.
    public static func named(_ name: String, metric: String?) throws -> FedTask {
        if let m = metric {
            guard let kind = MetricKind(rawValue: m) else {
                throw PilotError.invalidArgument("task '\(name)': unknown metric '\(m)'; expected one of \(MetricKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return try FedTask(name: name, metric: kind)
        }
        return try parse(name)
    }
}

/// A named set of tasks: the paper's two scenarios, or the tasks of a scenario made from the user's data.
public struct Scenario: Hashable, Sendable {
    /// "vu", "gvqa", or the name a user gave (`pilot data scenario --name`).
    public let rawValue: String
    public let tasks: [FedTask]

    public init(name: String, tasks: [FedTask]) {
        rawValue = name
        self.tasks = tasks
    }

    /// Visual understanding: vqa, caption, grounding.
    public static let vu = Scenario(name: "vu", tasks: [.vqa, .caption, .grounding])
    /// General VQA: science, vqa, ocr.
    public static let gvqa = Scenario(name: "gvqa", tasks: [.science, .vqa, .ocr])

    /// The paper's two scenarios (what the generator makes).
    public static let allCases: [Scenario] = [.vu, .gvqa]

    public init?(rawValue: String) {
        guard let s = Self.allCases.first(where: { $0.rawValue == rawValue }) else { return nil }
        self = s
    }

    /// The default task shares of the public pretraining split: half captions (LLaVA's feature
    /// alignment: the base learns to see and to describe) and half, in equal parts, the other
    /// instruction tasks that none of this scenario's clients owns (the base learns to follow
    /// instructions). vu: caption 0.5, ocr 0.25, science 0.25; gvqa: caption 0.5, grounding 0.5.
    /// Calibration (docs/calibration.md): with every client format in pretraining the base already
    /// matched local tuning; with captions only it could not follow instructions at all, and every
    /// method with one global model collapsed to a single answer format.
    public var defaultPretrainMix: [FedTask: Double] {
        let others = FedTask.allCases.filter { $0 != .caption && !tasks.contains($0) }
        var mix: [FedTask: Double] = [.caption: 0.5]
        for t in others { mix[t, default: 0] += 0.5 / Double(others.count) }
        return mix
    }

    /// One of the generator's scenarios by name.
    public static func parse(_ name: String) throws -> Scenario {
        guard let s = Scenario(rawValue: name.lowercased()) else {
            throw PilotError.invalidArgument("unknown scenario '\(name)'; expected vu (vqa, caption, grounding) or gvqa (science, vqa, ocr)")
        }
        return s
    }
}
