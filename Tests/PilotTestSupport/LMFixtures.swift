import Foundation

/// Committed fixtures of the LM tests (made by Tests/Fixtures/lm/make_lm_fixtures.py with transformers) and the
/// SmolLM2 model that scripts/get_smollm2.sh imports into models/ (fetched by scripts/test.sh).
public enum LMFixtures {
    public static let dir = repositoryRoot + "/Tests/Fixtures/lm"
    public static func path(_ name: String) -> String { dir + "/" + name }
    /// The imported SmolLM2-135M-Instruct directory, or nil when it was not fetched (PILOT_SMOLLM2 overrides).
    public static var smollm2: String? {
        let p = ProcessInfo.processInfo.environment["PILOT_SMOLLM2"] ?? (repositoryRoot + "/models/smollm2-135m-instruct")
        return FileManager.default.fileExists(atPath: p + "/config.json") ? p : nil
    }
}

/// The error a throwing body raises, as text; nil when it does not throw.
public func errorText(_ body: () throws -> Void) -> String? {
    do { try body(); return nil } catch { return "\(error)" }
}
