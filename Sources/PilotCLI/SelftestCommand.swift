import ArgumentParser

struct SelftestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "selftest", abstract: "Check MPI, OpenBLAS and HDF5 on this machine (run under mpirun).")
    func run() throws {}
}
