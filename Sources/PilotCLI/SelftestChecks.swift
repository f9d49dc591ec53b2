import Foundation
import PilotComm
import PilotCore
import PilotHDF5
import PilotTensor

/// The checks of `pilot selftest`. Expected values are computed independently on every rank
/// from formulas (each rank knows what every other rank contributes), never taken from the
/// operation under test.
struct SelftestChecks {
    let world: any Communicator
    let tasks: Int
    let dir: String
    let failOnRank: Int?
    let report: SelftestReport

    /// What rank r contributes to the reductions: values whose float sum depends on order.
    static func contribution(worldRank r: Int, count: Int) -> [Float] {
        (0..<count).map { i in
            i == 0 ? (r % 2 == 0 ? 1e8 : 1) * (r % 4 < 2 ? 1 : -1) : Float(r) * 0.1 + Float(i) * 1e-3
        }
    }

    func runAll() throws {
        let size = world.size, rank = world.rank
        // the hosts the ranks run on, in order of first rank: what a node split (the shared base) sees
        let hostNames = try world.allgatherv(Array(type(of: world).hostName.utf8)).map { String(decoding: $0, as: UTF8.self) }
        var hosts: [String] = []
        for h in hostNames where !hosts.contains(h) { hosts.append(h) }
        let layout = hosts.map { h in "\(h): \(hostNames.filter { $0 == h }.count)" }.joined(separator: ", ")
        try report.check("mpi") {
            "world of \(size) ranks on \(hosts.count) host\(hosts.count == 1 ? "" : "s") (\(layout)); rank 0 is the server, \(size - 1) clients; \(MPIRuntime.libraryVersion)"
        }

        // Per-task communicators: client k (world rank k ≥ 1) has task (k − 1) mod T; the server has none.
        let myTask: Int? = rank == 0 ? nil : (rank - 1) % tasks
        let taskComm = try world.split(color: myTask, key: rank, name: myTask.map { "task[\($0)]" } ?? "none")
        let members: [Int] = myTask.map { t in (1..<size).filter { ($0 - 1) % tasks == t } } ?? []
        try report.check("split") {
            if rank == 0 {
                guard taskComm == nil else { throw PilotError.message("the server received a task communicator") }
            } else {
                let c = try unwrap(taskComm)
                let seen = try c.allgather([Int64(rank)]).map { Int($0) }
                guard seen == members, c.rank == members.firstIndex(of: rank) else {
                    throw PilotError.message("task \(myTask!) members \(seen), expected \(members)")
                }
            }
            let used = min(tasks, size - 1)
            return "\(used) task communicators of sizes \((0..<used).map { t in (1..<size).filter { ($0 - 1) % tasks == t }.count }); server excluded"
        }

        if let failOnRank, failOnRank == rank {
            throw PilotError.message("selftest was asked to fail on rank \(rank) (--fail-on-rank)")
        }

        try report.check("allreduce") {
            // Inside each task: float sum must equal the rank-order left fold, bit for bit.
            if let c = taskComm {
                var v = Self.contribution(worldRank: rank, count: 1000)
                try c.allreduce(&v, op: .sum)
                var expected = Self.contribution(worldRank: members[0], count: 1000)
                for m in members.dropFirst() {
                    let x = Self.contribution(worldRank: m, count: 1000)
                    for i in expected.indices { expected[i] = expected[i] + x[i] }
                }
                guard v == expected else { throw PilotError.message("task sum differs from the rank-order fold in \(zip(v, expected).filter { $0 != $1 }.count) elements") }
            }
            var d = [Double(rank) + 0.5, 1e-3]
            try world.allreduce(&d, op: .sum)
            var dExpected = [0.5, 1e-3]
            for r in 1..<size { dExpected[0] += Double(r) + 0.5; dExpected[1] += 1e-3 }
            let i = try world.allreduce(scalar: Int64(rank * rank), op: .sum)
            let mx = try world.allreduce(scalar: Float(rank) * 1.5, op: .max)
            guard d == dExpected else { throw PilotError.message("double sum \(d) != \(dExpected)") }
            guard i == Int64((0..<size).map { $0 * $0 }.reduce(0, +)) else { throw PilotError.message("int64 sum \(i)") }
            guard mx == Float(size - 1) * 1.5 else { throw PilotError.message("max \(mx)") }
            return "task sums equal the rank-order fold bit for bit; float64/int64 sum and max correct"
        }

        try report.check("gatherv") {
            let mine = [Float](repeating: Float(rank), count: rank + 1)
            let got = try world.gatherv(mine, root: 0)
            if rank == 0 {
                for r in 0..<size where got[r] != [Float](repeating: Float(r), count: r + 1) {
                    throw PilotError.message("chunk from rank \(r) is \(got[r])")
                }
            }
            let all = try world.allgatherv([Int64](repeating: Int64(rank), count: rank % 3))
            for r in 0..<size where all[r] != [Int64](repeating: Int64(r), count: r % 3) {
                throw PilotError.message("allgatherv chunk from rank \(r) is \(all[r])")
            }
            return "rank 0 received \(size) chunks of lengths 1...\(size); allgatherv agrees"
        }

        try report.check("scatterv") {
            let chunks: [[Float]] = rank == 0 ? (0..<size).map { r in (0..<(2 * r)).map { Float(r * 10 + $0) } } : []
            let got = try world.scatterv(chunks, root: 0)
            let expected = (0..<(2 * rank)).map { Float(rank * 10 + $0) }
            guard got == expected else { throw PilotError.message("received \(got.prefix(4))…, expected \(expected.prefix(4))…") }
            return "every rank received its own chunk (lengths 0, 2, …, \(2 * (size - 1)))"
        }

        try report.check("broadcast") {
            let text = try world.broadcast(string: rank == 0 ? "round = 1 · stage = \"pilot\" ✓" : "", root: 0)
            guard text == "round = 1 · stage = \"pilot\" ✓" else { throw PilotError.message("received \(text)") }
            return "UTF-8 text from rank 0 reached every rank"
        }

        try report.check("hdf5") {
            let path = dir + "/pilot-selftest-\(try world.broadcast(scalar: Int64(getpid()), root: 0)).h5"
            if rank == 0 {
                let f = try H5File.create(path)
                try f.write(Self.contribution(worldRank: 3, count: 64), shape: [8, 8], at: "clients/3/lora_a")
                try f.write(strings: ["vqa", "caption", "grounding"], at: "tasks")
                try f.setAttribute("round", .int(1))
                try f.setAttribute("config", .string("algorithm = \"pilot\""))
                try f.commit()
            }
            try world.barrier()
            let r = try H5File.open(path)
            let a = try r.read(Float.self, at: "clients/3/lora_a")
            guard a.shape == [8, 8], a.values == Self.contribution(worldRank: 3, count: 64) else {
                throw PilotError.message("dataset read back wrong: shape \(a.shape)")
            }
            guard try r.readStrings(at: "tasks") == ["vqa", "caption", "grounding"],
                  try r.attribute("round") == .int(1),
                  try r.checksumStatus(of: "clients/3/lora_a") == true else {
                throw PilotError.message("strings, attributes or checksum read back wrong")
            }
            r.close()
            try world.barrier()
            if rank == 0 { unlink(path) }
            return "rank 0 wrote and committed \(path) atomically; all \(size) ranks verified values, shapes and SHA-256"
        }

        try report.check("openblas") {
            let m = 48, n = 40, k = 56
            let a = (0..<(m * k)).map { Float(($0 * 7) % 13) - 6 }
            let b = (0..<(k * n)).map { Float(($0 * 5) % 11) - 5 }
            var ref = [Float](repeating: 0, count: m * n)
            referenceGEMM(m: m, n: n, k: k, a: a, b: b, c: &ref)
            var got = [Float](repeating: 0, count: m * n)
            a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in got.withUnsafeMutableBufferPointer { pc in
                sgemm(m: m, n: n, k: k, a: pa.baseAddress!, b: pb.baseAddress!, c: pc.baseAddress!)
            } } }
            guard got == ref else { throw PilotError.message("sgemm differs from the reference on small integers") }
            return BLASRuntime.summary
        }
    }

    func unwrap<T>(_ v: T?) throws -> T {
        guard let v else { throw PilotError.message("missing value") }
        return v
    }
}
