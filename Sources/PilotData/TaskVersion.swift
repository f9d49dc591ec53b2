import PilotCore

/// Which definition of the generated tasks a scenario uses (`pilot data generate --task-version`).
///
/// - `v1`: the tasks as first released: grounding boxes in steps of 0.01; science facts drawn
///   afresh for every example and answered with the option's letter.
/// - `v2`: grounding and science made learnable by the reference model (docs/calibration.md §6).
///   Grounding boxes are snapped outwards to the 4 × 4 grid of the model's patches. Science facts
///   form one fixed world (red things are always hot, large shapes always sink), still stated in
///   the context, and the answer is the option's text ("hot"), not its letter.
///   Caption, vqa and ocr are the same as in v1, example for example.
public enum TaskVersion: Int, CaseIterable, Sendable {
    case v1 = 1
    case v2 = 2

    public static func parse(_ text: String) throws -> TaskVersion {
        let t = text.hasPrefix("v") ? String(text.dropFirst()) : text
        guard let n = Int(t), let v = TaskVersion(rawValue: n) else {
            throw PilotError.invalidArgument("unknown task version '\(text)'; expected 1 or 2")
        }
        return v
    }
}
