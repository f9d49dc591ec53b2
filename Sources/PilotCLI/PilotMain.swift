public enum PilotMain {
    public static func run() { PilotCommand.main() }
}
