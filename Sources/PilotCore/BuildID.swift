import Foundation

/// The identity of the running executable: its GNU build ID (the linker's `.note.gnu.build-id`, a hash
/// of the linked code), read from the ELF program headers of `/proc/self/exe`; or, for an executable
/// linked without one, the SHA-256 of the whole file. Two hosts that run different pilot builds have
/// different IDs; copies of one build have the same.
public enum BuildID {
    /// "build-id:<hex>" or "sha256:<hex>" ("unknown" where /proc/self/exe cannot be read).
    public static let current: String = of(executable: "/proc/self/exe")

    public static func of(executable path: String) -> String {
        guard let h = FileHandle(forReadingAtPath: path) else { return "unknown" }
        defer { try? h.close() }
        if let id = gnuBuildID(h) { return "build-id:" + SHA256.hex(id) }
        guard let all = try? Data(contentsOf: URL(fileURLWithPath: path)) else { return "unknown" }
        var sha = SHA256()
        sha.update(all)
        return "sha256:" + SHA256.hex(sha.finalize())
    }

    /// The NT_GNU_BUILD_ID note's bytes, from the PT_NOTE segments of a 64-bit little-endian ELF file.
    static func gnuBuildID(_ h: FileHandle) -> [UInt8]? {
        func read(_ offset: UInt64, _ count: Int) -> [UInt8]? {
            guard (try? h.seek(toOffset: offset)) != nil, let d = try? h.read(upToCount: count), d.count == count else { return nil }
            return [UInt8](d)
        }
        func u(_ b: [UInt8], _ at: Int, _ n: Int) -> UInt64 {
            (0..<n).reduce(UInt64(0)) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) }
        }
        guard let eh = read(0, 64), eh[0] == 0x7f, eh[1] == 0x45, eh[2] == 0x4c, eh[3] == 0x46,
              eh[4] == 2, eh[5] == 1 else { return nil }   // ELFCLASS64, ELFDATA2LSB
        let phoff = u(eh, 32, 8), phentsize = Int(u(eh, 54, 2)), phnum = Int(u(eh, 56, 2))
        guard phentsize >= 56, phnum < 256 else { return nil }
        for i in 0..<phnum {
            guard let ph = read(phoff + UInt64(i * phentsize), 56), u(ph, 0, 4) == 4 else { continue }   // PT_NOTE
            let size = Int(u(ph, 32, 8))
            guard size > 0, size < 1 << 16, let notes = read(u(ph, 8, 8), size) else { continue }
            var at = 0
            while at + 12 <= notes.count {
                let namesz = Int(u(notes, at, 4)), descsz = Int(u(notes, at + 4, 4)), type = u(notes, at + 8, 4)
                let name = at + 12, desc = name + (namesz + 3) / 4 * 4
                guard desc + descsz <= notes.count else { break }
                if type == 3, namesz == 4, notes[name..<name + 3] == [0x47, 0x4e, 0x55] { return Array(notes[desc..<desc + descsz]) }
                at = desc + (descsz + 3) / 4 * 4
            }
        }
        return nil
    }
}
