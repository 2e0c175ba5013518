import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An OpenSSH client configuration (`~/.ssh/config`, ssh_config(5)), for the settings fleet takes
/// from it: `HostName`, `User`, `Port`, `IdentityFile`, `ProxyJump`, `UserKnownHostsFile`,
/// `StrictHostKeyChecking` and `ConnectTimeout`. Every other keyword is ignored.
///
/// As in ssh: keywords are case-insensitive and take `Keyword value` or `Keyword=value`; a `Host`
/// line starts a block that applies when one of its patterns (`*`, `?`, negated with `!`) matches
/// the name and no negated one does; the first value found for a keyword wins; `Include` reads
/// other files (globs; relative paths from the including file's directory) in place, and a `Host`
/// line inside one lasts to the end of that file. A `Match` block is never applied (fleet does not
/// evaluate its criteria).
public struct SSHConfig: Sendable {
    /// One setting as found: its value, and the file and line it came from.
    public struct Value: Sendable, Equatable {
        public var text: String
        public var file: String
        public var line: Int

        /// `~/.ssh/config:12`.
        public var origin: String { "\(file):\(line)" }
    }

    enum Line: Sendable {
        case host(patterns: [String])
        case match
        case include(files: [String])
        case option(keyword: String, value: String, line: Int)
    }

    /// The keywords fleet takes, lower-cased.
    public static let honoured = ["hostname", "user", "port", "identityfile", "proxyjump", "userknownhostsfile",
                                  "stricthostkeychecking", "connecttimeout"]

    /// The file read first.
    public let path: String
    let files: [String: [Line]]

    /// Reads `path` and every file it includes (at most 16 levels deep). `read` returns a file's
    /// text or nil when it cannot be read; `glob` expands an Include pattern to paths (sorted).
    public static func load(path: String, read: (String) -> String?, glob: (String) -> [String]) throws -> SSHConfig {
        var files: [String: [Line]] = [:]
        func visit(_ file: String, depth: Int) throws {
            guard files[file] == nil else { return }
            guard depth <= 16 else { throw SSHConfigError(file: file, line: nil, message: "Include nested more than 16 levels") }
            guard let text = read(file) else {
                throw SSHConfigError(file: file, line: nil, message: "cannot read the file")
            }
            let lines = try parse(text, file: file, glob: glob)
            files[file] = lines
            for case .include(let included) in lines {
                for other in included { try visit(other, depth: depth + 1) }
            }
        }
        try visit(path, depth: 0)
        return SSHConfig(path: path, files: files)
    }

    /// Reads a file from disk (Include globs through glob(3)).
    public static func load(path: String) throws -> SSHConfig {
        try load(path: path, read: { file in
            guard let data = FileManager.default.contents(atPath: file) else { return nil }
            return String(data: data, encoding: .utf8)
        }, glob: systemGlob)
    }

    static func systemGlob(_ pattern: String) -> [String] {
        var g = glob_t()
        defer { globfree(&g) }
        guard Glibc.glob(pattern, 0, nil, &g) == 0 else { return [] }
        return (0..<Int(g.gl_pathc)).compactMap { g.gl_pathv[$0].map { String(cString: $0) } }.sorted()
    }

    /// The lines of one file. Include paths are made absolute (`~` expanded, relative to `file`'s directory).
    static func parse(_ text: String, file: String, glob: (String) -> [String]) throws -> [Line] {
        var out: [Line] = []
        let directory = (file as NSString).deletingLastPathComponent
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            guard let (keyword, args) = split(String(raw)) else { continue }
            switch keyword {
            case "host":
                guard !args.isEmpty else { throw SSHConfigError(file: file, line: number, message: "Host needs at least one pattern") }
                out.append(.host(patterns: args))
            case "match":
                out.append(.match)
            case "include":
                var paths: [String] = []
                for arg in args {
                    var pattern = InventoryPaths.expandHome(arg) ?? arg
                    if !pattern.hasPrefix("/") { pattern = directory + "/" + pattern }
                    paths += glob(pattern)
                }
                out.append(.include(files: paths))
            default:
                guard honoured.contains(keyword) else { continue }
                guard !args.isEmpty else {
                    throw SSHConfigError(file: file, line: number, message: "\(keyword) has no value")
                }
                out.append(.option(keyword: keyword, value: args.joined(separator: " "), line: number))
            }
        }
        return out
    }

    /// `Keyword value…` or `Keyword=value`, comments and blank lines skipped, double quotes honoured.
    static func split(_ line: String) -> (String, [String])? {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, !trimmed.hasPrefix("#") else { return nil }
        var words: [String] = []
        var current = ""
        var quoted = false
        var inWord = false
        var keywordDone = false
        for ch in trimmed {
            if ch == "\"" { quoted.toggle(); inWord = true; continue }
            if !quoted && (ch == " " || ch == "\t" || (ch == "=" && !keywordDone && words.isEmpty)) {
                if inWord { words.append(current); current = ""; inWord = false }
                if ch == "=" { keywordDone = true }
                continue
            }
            if !quoted && ch == "#" && !inWord { break }
            current.append(ch)
            inWord = true
        }
        if inWord { words.append(current) }
        guard let first = words.first else { return nil }
        return (first.lowercased(), Array(words.dropFirst()))
    }

    /// The honoured settings for `host` (the name the inventory gives, as on ssh's command line),
    /// keyword (lower-cased) to the first value found.
    public func settings(for host: String) -> [String: Value] {
        var found: [String: Value] = [:]
        func walk(_ file: String) {
            var active = true
            for line in files[file] ?? [] {
                switch line {
                case .host(let patterns): active = Self.matches(host, patterns: patterns)
                case .match: active = false
                case .include(let included):
                    if active { for other in included { walk(other) } }
                case .option(let keyword, let value, let number):
                    if active && found[keyword] == nil {
                        found[keyword] = Value(text: value, file: file, line: number)
                    }
                }
            }
        }
        walk(path)
        return found
    }

    /// A `Host` line's patterns against a name: one positive match and no negated one.
    public static func matches(_ host: String, patterns: [String]) -> Bool {
        let name = host.lowercased()
        var matched = false
        for raw in patterns.flatMap({ $0.split(separator: ",").map(String.init) }) {
            if raw.hasPrefix("!") {
                if glob(String(raw.dropFirst()).lowercased(), name) { return false }
            } else if glob(raw.lowercased(), name) {
                matched = true
            }
        }
        return matched
    }

    /// `*` (any run) and `?` (one character) wildcard matching.
    static func glob(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern), t = Array(text)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count && (p[pi] == "?" || p[pi] == t[ti]) {
                pi += 1; ti += 1
            } else if pi < p.count && p[pi] == "*" {
                star = pi; mark = ti; pi += 1
            } else if star >= 0 {
                pi = star + 1; mark += 1; ti = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}

/// A problem in an ssh config file, with where it is.
public struct SSHConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    public var file: String
    public var line: Int?
    public var message: String

    public var description: String { "\(file)\(line.map { ":\($0)" } ?? ""): \(message)" }
}
