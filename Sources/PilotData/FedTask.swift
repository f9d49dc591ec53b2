/// The five FedMIT task kinds (DESIGN §5) and the two scenarios of the paper.
public enum FedTask: String, CaseIterable, Sendable, Codable, Comparable {
    /// Scene captioning (stands for COCO); scored with CIDEr-D against 5 references.
    case caption
    /// Short-answer visual questions (stands for GQA); exact match after normalisation.
    case vqa
    /// Referring-expression boxes (stands for RefCOCO); Acc@IoU≥0.5.
    case grounding
    /// Reading drawn text (stands for OCR-VQA); exact match after normalisation.
    case ocr
    /// Multiple choice needing a textual fact and the image (stands for ScienceQA); letter accuracy, or exact match where the reference is the option's text (task version 2).
    case science

    public static func < (a: FedTask, b: FedTask) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// Parses a task name, with an error that lists the valid names.
    public static func parse(_ name: String) throws -> FedTask {
        guard let t = FedTask(rawValue: name.lowercased()) else {
            throw PilotError.invalidArgument("unknown task '\(name)'; expected one of \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return t
    }

    /// The metric the task is scored with.
    public var metric: MetricKind {
        switch self {
        case .caption: return .ciderD
        case .vqa, .ocr: return .exactMatch
        case .grounding: return .accAtIoU50
        case .science: return .choiceAccuracy
        }
    }
}

/// The paper's two scenarios, each with three tasks of three clients.
public enum Scenario: String, CaseIterable, Sendable, Codable {
    /// Visual understanding: vqa, caption, grounding.
    case vu
    /// General VQA: science, vqa, ocr.
    case gvqa

    public var tasks: [FedTask] {
        switch self {
        case .vu: return [.vqa, .caption, .grounding]
        case .gvqa: return [.science, .vqa, .ocr]
        }
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

    public static func parse(_ name: String) throws -> Scenario {
        guard let s = Scenario(rawValue: name.lowercased()) else {
            throw PilotError.invalidArgument("unknown scenario '\(name)'; expected vu (vqa, caption, grounding) or gvqa (science, vqa, ocr)")
        }
        return s
    }
}

import PilotCore
