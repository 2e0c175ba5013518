@testable import FleetSSH
import Foundation
import XCTest

/// A public key blob of `type` whose key bytes are all `seed`.
func keyBlob(_ type: String, _ seed: UInt8) -> Data {
    var d = Data()
    for field in [Data(type.utf8), Data(repeating: seed, count: 32)] {
        let n = UInt32(field.count)
        d.append(contentsOf: [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)])
        d.append(field)
    }
    return d
}

func b64(_ type: String, _ seed: UInt8) -> String { keyBlob(type, seed).base64EncodedString() }

let ed = "ssh-ed25519", ecdsa = "ecdsa-sha2-nistp256"

final class KnownHostsIndexTests: XCTestCase {
    func index(_ text: String) -> KnownHostsIndex { KnownHostsIndex(text: Data(text.utf8)) }

    func testPlainNamesCommentsBlankLinesAndCRLF() {
        let i = index("""
        # a comment
        
           fd00::1,Web.Example ssh-ed25519 \(b64(ed, 1)) root@web\r
        \tfd00::2 \(ecdsa) \(b64(ecdsa, 2))
        """)
        XCTAssertEqual(i.warnings, [])
        XCTAssertEqual(i.count, 2)
        XCTAssertEqual(i.entries(host: "fd00::1", port: 22).map(\.key), [keyBlob(ed, 1)])
        XCTAssertEqual(i.entries(host: "web.example", port: 22).map(\.key), [keyBlob(ed, 1)], "names are case-insensitive")
        XCTAssertEqual(i.keyTypes(host: "fd00::2", port: 22), [ecdsa])
        XCTAssertEqual(i.entries(host: "fd00::3", port: 22), [])
    }

    func testBracketedPortNeverFallsBackToPort22() {
        let i = index("fd00::1 \(ed) \(b64(ed, 1))\n[fd00::2]:2222 \(ed) \(b64(ed, 2))\n")
        XCTAssertEqual(i.entries(host: "fd00::1", port: 2222), [], "a port-22 entry is not the port-2222 host's")
        XCTAssertEqual(i.verdict(host: "fd00::1", port: 2222, keyType: ed, key: keyBlob(ed, 1)), .unknown)
        XCTAssertEqual(i.verdict(host: "fd00::2", port: 2222, keyType: ed, key: keyBlob(ed, 2)), .known)
        XCTAssertEqual(i.entries(host: "fd00::2", port: 22), [])
    }

    func testHashedEntriesFromSshKeygen() {
        // `ssh-keygen -H` of "fd42::5" and "[fd42::5]:2222", both with this key.
        let key = "AAAAC3NzaC1lZDI1NTE5AAAAIFOrMFRb7FIms8mqW6lrJ30myvbS/0Y7qDIvWnE8yaoG"
        let i = index("""
        |1|96x1b7PwL0gNfUBITMscShnsVa4=|ESXZSUgVb5KsDG+ADosfWutaYm0= ssh-ed25519 \(key)
        |1|sxri/YDzFeJvUUTOTIMHSA1WmX8=|L+qQNuwbu2UBaQZ8S+BHh53IAC8= ssh-ed25519 \(key)
        """)
        XCTAssertEqual(i.warnings, [])
        let blob = Data(base64Encoded: key)!
        XCTAssertEqual(i.entries(host: "fd42::5", port: 22).map(\.line), [1])
        XCTAssertEqual(i.entries(host: "fd42::5", port: 2222).map(\.line), [2])
        XCTAssertEqual(i.entries(host: "fd42::6", port: 22), [])
        // Asking again (the prepared HMAC state is reused) gives the same answers.
        XCTAssertEqual(i.verdict(host: "fd42::5", port: 22, keyType: ed, key: blob), .known)
        XCTAssertEqual(i.verdict(host: "fd42::5", port: 2222, keyType: ed, key: blob), .known)
        XCTAssertEqual(i.verdict(host: "fd42::5", port: 22, keyType: ed, key: keyBlob(ed, 9)), .changed)
    }

    func testPatternsWithWildcardsAndNegation() {
        let i = index("*.lab,!bad.lab \(ed) \(b64(ed, 1))\nn?.edge \(ed) \(b64(ed, 2))\n[*.lab]:2222 \(ed) \(b64(ed, 3))\n")
        XCTAssertEqual(i.entries(host: "a.lab", port: 22).map(\.line), [1])
        XCTAssertEqual(i.entries(host: "bad.lab", port: 22), [], "a negated pattern excludes the host")
        XCTAssertEqual(i.entries(host: "n1.edge", port: 22).map(\.line), [2])
        XCTAssertEqual(i.entries(host: "n12.edge", port: 22), [])
        XCTAssertEqual(i.entries(host: "a.lab", port: 2222).map(\.line), [3])
    }

    func testRevokedKeyIsRefusedEvenWhenAlsoRecorded() {
        let i = index("fd00::1 \(ed) \(b64(ed, 1))\n@revoked * \(ed) \(b64(ed, 1))\n")
        XCTAssertEqual(i.verdict(host: "fd00::1", port: 22, keyType: ed, key: keyBlob(ed, 1)), .revoked)
        XCTAssertEqual(i.verdict(host: "fd00::9", port: 22, keyType: ed, key: keyBlob(ed, 1)), .revoked)
        XCTAssertEqual(i.keyTypes(host: "fd00::9", port: 22), [], "a revoked key never picks the key type")
    }

    func testAnyRecordedTypeMakesANewTypeAChangedKey() {
        let i = index("fd00::1 \(ecdsa) \(b64(ecdsa, 1))\n")
        XCTAssertEqual(i.verdict(host: "fd00::1", port: 22, keyType: ed, key: keyBlob(ed, 2)), .changed)
        XCTAssertEqual(i.verdict(host: "fd00::1", port: 22, keyType: ecdsa, key: keyBlob(ecdsa, 1)), .known)
    }

    func testBadLinesAreSkippedWithWarningsAndTheRestStillWorks() {
        let long = "fd00::7 \(ed) " + String(repeating: "A", count: KnownHostsIndex.maxLineLength)
        let i = index("""
        @cert-authority *.lab \(ed) \(b64(ed, 1))
        @bogus fd00::1 \(ed) \(b64(ed, 1))
        fd00::2 \(ed)
        fd00::3 \(ed) !!!notbase64!!!
        fd00::4 \(ecdsa) \(b64(ed, 4))
        |1|short|x= \(ed) \(b64(ed, 5))
        \(long)
        fd00::8 \(ed) \(b64(ed, 8))
        """)
        XCTAssertEqual(i.warnings.count, 7, i.warnings.joined(separator: "\n"))
        for (n, w) in i.warnings.enumerated() { XCTAssertTrue(w.hasPrefix("line \(n + 1): skipped"), w) }
        XCTAssertTrue(i.warnings[0].contains("@cert-authority"))
        XCTAssertEqual(i.count, 1)
        XCTAssertEqual(i.verdict(host: "fd00::8", port: 22, keyType: ed, key: keyBlob(ed, 8)), .known)
        XCTAssertEqual(i.entries(host: "fd00::1", port: 22), [], "a line with an unknown marker is not used")
        XCTAssertEqual(i.entries(host: "fd00::7", port: 22), [])
    }
}

final class KnownHostsStoreTests: XCTestCase {
    func tempPath(_ content: String?) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-kh-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("known_hosts").path
        if let content { try content.write(toFile: path, atomically: true, encoding: .utf8) }
        return path
    }

    func testFileIsReadOnceForManyLookups() throws {
        var text = ""
        for n in 1...200 { text += "fd00::\(n) \(ed) \(b64(ed, UInt8(n)))\n" }
        let path = try tempPath(text)
        let store = KnownHostsStore()
        for n in 1...200 {
            XCTAssertEqual(try store.check(path: path, host: "fd00::\(n)", port: 22, keyType: ed, key: keyBlob(ed, UInt8(n)),
                                           acceptNew: false), .known)
            XCTAssertEqual(try store.index(for: path).keyTypes(host: "fd00::\(n)", port: 22), [ed])
        }
        XCTAssertEqual(store.reads(of: path), 1)
    }

    func testAnotherWritersChangeIsReadAgain() throws {
        let path = try tempPath("fd00::1 \(ed) \(b64(ed, 1))\n")
        let store = KnownHostsStore()
        XCTAssertEqual(try store.check(path: path, host: "fd00::2", port: 22, keyType: ed, key: keyBlob(ed, 2), acceptNew: false), .unknown)
        try "fd00::1 \(ed) \(b64(ed, 1))\nfd00::2 \(ed) \(b64(ed, 2))\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertEqual(try store.check(path: path, host: "fd00::2", port: 22, keyType: ed, key: keyBlob(ed, 2), acceptNew: false), .known)
        XCTAssertEqual(store.reads(of: path), 2)
    }

    func testAcceptNewAppendsUnderConcurrencyOneLinePerHost() throws {
        let path = try tempPath("# kept")   // no final newline: the first append starts a new line
        let store = KnownHostsStore()
        let hosts = 64
        let verdicts = Box(Array(repeating: HostKeyVerdict.unknown, count: hosts * 2))
        // Each host twice at once: once with its key, once with another key of another type.
        DispatchQueue.concurrentPerform(iterations: hosts * 2) { i in
            let n = i % hosts, other = i >= hosts
            let (type, key) = other ? (ecdsa, keyBlob(ecdsa, UInt8(n))) : (ed, keyBlob(ed, UInt8(n)))
            let v = (try? store.check(path: path, host: "fd00::\(n)", port: 22, keyType: type, key: key,
                                      acceptNew: true)) ?? .unknown
            verdicts.update { $0[i] = v }
        }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.first, "# kept")
        XCTAssertEqual(lines.count, hosts + 1, "one key appended per host, never a second type")
        let fresh = KnownHostsIndex(text: Data(text.utf8))
        XCTAssertEqual(fresh.warnings, [])
        for n in 0..<hosts {
            let pair = [verdicts.value[n], verdicts.value[n + hosts]]
            XCTAssertEqual(pair.filter { $0 == .known }.count, 1, "host \(n): \(pair)")
            XCTAssertEqual(pair.filter { $0 == .changed }.count, 1, "host \(n): \(pair)")
            XCTAssertEqual(fresh.entries(host: "fd00::\(n)", port: 22).count, 1)
        }
        XCTAssertEqual(store.reads(of: path), 1, "the store's own appends do not make it read the file again")
    }

    func testMissingFileIsEmptyAndAcceptNewCreatesIt0600() throws {
        let path = try tempPath(nil)
        let store = KnownHostsStore()
        XCTAssertEqual(try store.check(path: path, host: "fd00::1", port: 2222, keyType: ed, key: keyBlob(ed, 1), acceptNew: false), .unknown)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        XCTAssertEqual(try store.check(path: path, host: "fd00::1", port: 2222, keyType: ed, key: keyBlob(ed, 1), acceptNew: true), .known)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "[fd00::1]:2222 \(ed) \(b64(ed, 1))\n")
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)
    }
}

final class ConnectPacerTests: XCTestCase {
    func testGrowsWhileSetUpsAreFarFromTheirDeadlineAndShrinksNearIt() {
        let p = ConnectPacer(cores: 2)
        XCTAssertEqual(p.limit, 16)
        for _ in 0..<10 { p.acquire(); p.release(used: 0.05) }
        XCTAssertEqual(p.limit, 26)
        p.acquire(); p.release(used: 0.15)
        XCTAssertEqual(p.limit, 26, "slower but with time to spare: unchanged")
        p.acquire(); p.release(used: 0.5)
        XCTAssertEqual(p.limit, 20, "a quarter off")
        p.acquire(); p.release(used: 0.5)
        XCTAssertEqual(p.limit, 20, "at most one decrease per window")
        for _ in 0..<200 { p.acquire(); p.release(used: 0.6) }
        XCTAssertEqual(p.limit, p.minLimit)
        p.acquire(); p.release(used: nil)
        XCTAssertEqual(p.limit, p.minLimit, "a failed connection says nothing about load")
    }

    func testNeverMoreInFlightThanTheLimit() {
        let p = ConnectPacer(cores: 1, initial: 2)
        let counts = Box((now: 0, peak: 0))
        DispatchQueue.concurrentPerform(iterations: 64) { _ in
            p.acquire()
            counts.update { $0.now += 1; $0.peak = max($0.peak, $0.now) }
            usleep(2000)   // the work done in the slot
            counts.update { $0.now -= 1 }
            p.release(used: nil)
        }
        XCTAssertLessThanOrEqual(counts.value.peak, 2)
        XCTAssertGreaterThan(counts.value.peak, 0)
    }

    /// A release wakes only as many waiters as can start; none is ever left asleep with a slot
    /// free, whether slots free one by one or the limit grows (fast set-ups) or shrinks.
    func testEveryWaiterGetsASlotWithoutBeingWokenForNothing() {
        let p = ConnectPacer(cores: 1, initial: 2)
        let done = DispatchGroup()
        let counts = Box((now: 0, peak: 0, finished: 0))
        let threads = 300
        for i in 0..<threads {
            done.enter()
            let t = Thread {
                p.acquire()
                counts.update { $0.now += 1; $0.peak = max($0.peak, $0.now) }
                counts.update { $0.now -= 1; $0.finished += 1 }
                // Mostly fast (the limit grows), now and then slow (it shrinks).
                p.release(used: i % 50 == 49 ? 0.5 : 0.01)
                done.leave()
            }
            t.stackSize = 64 * 1024
            t.start()
        }
        // A lost wakeup leaves threads asleep for ever: the wait would run out.
        XCTAssertEqual(done.wait(timeout: .now() + 60), .success, "\(counts.value.finished) of \(threads) got a slot")
        XCTAssertEqual(counts.value.finished, threads)
        XCTAssertLessThanOrEqual(counts.value.peak, p.maxLimit)
    }
}

/// A value shared by threads, changed under a lock.
final class Box<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var v: T
    init(_ v: T) { self.v = v }
    var value: T { lock.lock(); defer { lock.unlock() }; return v }
    func update(_ f: (inout T) -> Void) { lock.lock(); defer { lock.unlock() }; f(&v) }
}
