import PilotData

/// How the report shows each task's score: every score is multiplied by 100 (accuracies become
/// percentages, CIDEr-D is shown as papers print it, e.g. 110.5).
public enum ReportUnits {
    public static let scale = 100.0

    /// The metric's name as `pilot score` prints it (`cider_d`, `exact_match`, …).
    public static func metric(_ task: String) -> String {
        FedTask(rawValue: task)?.metric.rawValue ?? "unknown"
    }

    /// What a task's ×100 number means, for the table's footnote.
    public static func meaning(_ task: String) -> String {
        switch FedTask(rawValue: task)?.metric {
        case .ciderD?: return "CIDEr-D ×100"
        case .exactMatch?: return "exact-match accuracy in %"
        case .accAtIoU50?: return "Acc@IoU≥0.5 in %"
        case .choiceAccuracy?: return "multiple-choice accuracy in %"
        case .vqaAccuracy?: return "VQA accuracy in %"
        case .anls?: return "ANLS ×100"
        case nil: return "score ×100"
        }
    }

    /// The same in the characters of the plot's bitmap font.
    public static func plotMeaning(_ task: String) -> String {
        switch FedTask(rawValue: task)?.metric {
        case .ciderD?: return "CIDEr-D x100"
        case .exactMatch?: return "exact match %"
        case .accAtIoU50?: return "IoU>=0.5 %"
        case .choiceAccuracy?: return "accuracy %"
        case .vqaAccuracy?: return "vqa accuracy %"
        case .anls?: return "ANLS x100"
        case nil: return "score x100"
        }
    }
}
