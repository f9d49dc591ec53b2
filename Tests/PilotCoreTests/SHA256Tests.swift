import Foundation
import PilotCore
import PilotTestSupport
import Testing

@Suite("SHA-256")
struct SHA256Tests {
    @Test("NIST FIPS 180-4 vectors")
    func vectors() {
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        let million = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(SHA256.hex(million) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("streaming in uneven pieces equals Python's hashlib on the whole buffer", arguments: [1, 7, 63, 64, 65, 1000])
    func streaming(piece: Int) throws {
        let data = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var h = SHA256()
        for j in stride(from: 0, to: data.count, by: piece) { h.update(data[j..<min(j + piece, data.count)]) }
        let streamed = h.finalize().map { String(format: "%02x", $0) }.joined()
        let script = "import hashlib; print(hashlib.sha256(bytes(((i*31+7) & 255) for i in range(5000))).hexdigest())"
        let r = try runProcess("/usr/bin/python3", ["-c", script])
        #expect(streamed == r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(streamed == SHA256.hex(data))
    }
}
