import FleetCore
import Foundation

/// A small interpreter for the subset of POSIX sh the engine's actions send: lists (`;`, newlines),
/// `&&`, `||`, pipes, `if … then … else … fi`, redirections (`2>/dev/null`, `> file`, `2>&1`) and
/// single-quoted, double-quoted and backslash-escaped words. There is no expansion of any kind.
///
/// Built-in commands work on a `FakeHost`'s virtual files and sysctl table: `true`, `false`, `:`,
/// `exit`, `echo`, `printf %s`, `cat`, `test`/`[`, `mkdir`, `rm`, `chmod`, `sysctl`, `sha256sum`,
/// `sha256sum -c`, `stat -c %a`, `cut -d X -fN`. Any other command goes to the host's `unknownCommand` closure.
public enum FakeShell {
    public struct SyntaxError: Error, CustomStringConvertible, Sendable {
        public var message: String
        public var description: String { "fake sh: \(message)" }
    }

    // MARK: Tokens

    enum Token: Equatable {
        case word(String, quoted: Bool)
        case op(String)
        case redirect(fd: Int, append: Bool, target: String)
    }

    static func tokenize(_ text: String) throws -> [Token] {
        var tokens: [Token] = []
        let chars = Array(text)
        var i = 0
        var word = ""
        var inWord = false
        var quoted = false

        func endWord() {
            if inWord { tokens.append(.word(word, quoted: quoted)) }
            word = ""
            inWord = false
            quoted = false
        }

        while i < chars.count {
            let c = chars[i]
            switch c {
            case " ", "\t":
                endWord()
                i += 1
            case "\n", ";":
                endWord()
                tokens.append(.op(";"))
                i += 1
            case "#" where !inWord:
                while i < chars.count && chars[i] != "\n" { i += 1 }
            case "&":
                endWord()
                guard i + 1 < chars.count, chars[i + 1] == "&" else { throw SyntaxError(message: "background jobs (&) are not supported") }
                tokens.append(.op("&&"))
                i += 2
            case "|":
                endWord()
                if i + 1 < chars.count, chars[i + 1] == "|" {
                    tokens.append(.op("||"))
                    i += 2
                } else {
                    tokens.append(.op("|"))
                    i += 1
                }
            case ">", "<":
                guard c == ">" else { throw SyntaxError(message: "input redirection is not supported") }
                var fd = 1
                if inWord && !quoted, let n = Int(word) {
                    fd = n
                    word = ""
                    inWord = false
                } else {
                    endWord()
                }
                i += 1
                var append = false
                if i < chars.count, chars[i] == ">" { append = true; i += 1 }
                if i < chars.count, chars[i] == "&" {
                    i += 1
                    var n = ""
                    while i < chars.count, chars[i].isNumber { n.append(chars[i]); i += 1 }
                    guard !n.isEmpty else { throw SyntaxError(message: "bad redirection") }
                    tokens.append(.redirect(fd: fd, append: append, target: "&" + n))
                } else {
                    while i < chars.count, chars[i] == " " || chars[i] == "\t" { i += 1 }
                    var target = ""
                    while i < chars.count, !" \t\n;&|<>".contains(chars[i]) {
                        if chars[i] == "'" {
                            i += 1
                            while i < chars.count, chars[i] != "'" { target.append(chars[i]); i += 1 }
                            i += 1
                        } else {
                            target.append(chars[i])
                            i += 1
                        }
                    }
                    guard !target.isEmpty else { throw SyntaxError(message: "redirection without a target") }
                    tokens.append(.redirect(fd: fd, append: append, target: target))
                }
            case "'":
                inWord = true
                quoted = true
                i += 1
                while i < chars.count && chars[i] != "'" { word.append(chars[i]); i += 1 }
                guard i < chars.count else { throw SyntaxError(message: "unterminated single quote") }
                i += 1
            case "\"":
                inWord = true
                quoted = true
                i += 1
                while i < chars.count && chars[i] != "\"" {
                    if chars[i] == "\\", i + 1 < chars.count, "\"\\$`\n".contains(chars[i + 1]) {
                        if chars[i + 1] != "\n" { word.append(chars[i + 1]) }
                        i += 2
                    } else {
                        word.append(chars[i])
                        i += 1
                    }
                }
                guard i < chars.count else { throw SyntaxError(message: "unterminated double quote") }
                i += 1
            case "\\":
                inWord = true
                quoted = true
                if i + 1 < chars.count {
                    if chars[i + 1] != "\n" { word.append(chars[i + 1]) }
                    i += 2
                } else {
                    i += 1
                }
            case "(", ")":
                throw SyntaxError(message: "subshells are not supported")
            default:
                inWord = true
                word.append(c)
                i += 1
            }
        }
        endWord()
        return tokens
    }

    // MARK: Syntax tree

    indirect enum Node {
        case simple(words: [String], redirects: [(fd: Int, append: Bool, target: String)])
        case pipeline([Node])
        case andOr(Node, [(String, Node)])
        case list([Node])
        case ifThen(condition: Node, then: Node, otherwise: Node?)
    }

    struct Parser {
        var tokens: [Token]
        var index = 0

        var current: Token? { index < tokens.count ? tokens[index] : nil }

        func isKeyword(_ names: Set<String>) -> Bool {
            if case .word(let w, quoted: false)? = current, names.contains(w) { return true }
            return false
        }

        mutating func expectKeyword(_ name: String) throws {
            guard isKeyword([name]) else { throw SyntaxError(message: "expected \"\(name)\"") }
            index += 1
        }

        mutating func skipSeparators() {
            while case .op(";")? = current { index += 1 }
        }

        mutating func parseList(until terminators: Set<String>) throws -> Node {
            var items: [Node] = []
            skipSeparators()
            while current != nil && !isKeyword(terminators) {
                items.append(try parseAndOr())
                guard current != nil else { break }
                if case .op(";")? = current {
                    skipSeparators()
                } else if !isKeyword(terminators) {
                    throw SyntaxError(message: "unexpected token \(String(describing: current!))")
                }
            }
            return .list(items)
        }

        mutating func parseAndOr() throws -> Node {
            let first = try parsePipeline()
            var rest: [(String, Node)] = []
            while case .op(let o)? = current, o == "&&" || o == "||" {
                index += 1
                skipSeparators()
                rest.append((o, try parsePipeline()))
            }
            return rest.isEmpty ? first : .andOr(first, rest)
        }

        mutating func parsePipeline() throws -> Node {
            var stages = [try parseCommand()]
            while case .op("|")? = current {
                index += 1
                skipSeparators()
                stages.append(try parseCommand())
            }
            return stages.count == 1 ? stages[0] : .pipeline(stages)
        }

        mutating func parseCommand() throws -> Node {
            if isKeyword(["if"]) {
                index += 1
                let condition = try parseList(until: ["then"])
                try expectKeyword("then")
                let body = try parseList(until: ["else", "fi"])
                var otherwise: Node?
                if isKeyword(["else"]) {
                    index += 1
                    otherwise = try parseList(until: ["fi"])
                }
                try expectKeyword("fi")
                return .ifThen(condition: condition, then: body, otherwise: otherwise)
            }
            var words: [String] = []
            var redirects: [(fd: Int, append: Bool, target: String)] = []
            loop: while let t = current {
                switch t {
                case .word(let w, _): words.append(w)
                case .redirect(let fd, let append, let target): redirects.append((fd, append, target))
                case .op: break loop
                }
                index += 1
            }
            guard !words.isEmpty else { throw SyntaxError(message: "empty command") }
            return .simple(words: words, redirects: redirects)
        }
    }

    static func parse(_ text: String) throws -> Node {
        var parser = Parser(tokens: try tokenize(text))
        let node = try parser.parseList(until: [])
        guard parser.current == nil else { throw SyntaxError(message: "unexpected trailing tokens") }
        return node
    }

    // MARK: Execution

    struct Exit: Error { var status: Int32 }

    struct Output {
        var stdout = Data()
        var stderr = Data()
        mutating func out(_ s: String) { stdout.append(Data(s.utf8)) }
        mutating func err(_ s: String) { stderr.append(Data(s.utf8)) }
    }

    /// Runs `text` on `host`. Syntax errors end with status 2 and the error on stderr, as sh does.
    public static func run(_ text: String, stdin: Data?, on host: FakeHost) -> CommandResult {
        var out = Output()
        let status: Int32
        do {
            let node = try parse(text)
            status = try execute(node, stdin: stdin ?? Data(), host: host, out: &out)
        } catch let e as Exit {
            status = e.status
        } catch let e as SyntaxError {
            out.err(e.description + "\n")
            status = 2
        } catch {
            out.err("fake sh: \(error)\n")
            status = 2
        }
        return CommandResult(stdout: out.stdout, stderr: out.stderr, exitCode: status)
    }

    static func execute(_ node: Node, stdin: Data, host: FakeHost, out: inout Output) throws -> Int32 {
        switch node {
        case .list(let items):
            var status: Int32 = 0
            for item in items { status = try execute(item, stdin: stdin, host: host, out: &out) }
            return status
        case .andOr(let first, let rest):
            var status = try execute(first, stdin: stdin, host: host, out: &out)
            for (op, next) in rest {
                if (op == "&&" && status == 0) || (op == "||" && status != 0) {
                    status = try execute(next, stdin: stdin, host: host, out: &out)
                }
            }
            return status
        case .pipeline(let stages):
            var input = stdin
            var status: Int32 = 0
            for (i, stage) in stages.enumerated() {
                if i == stages.count - 1 {
                    status = try execute(stage, stdin: input, host: host, out: &out)
                } else {
                    var piped = Output()
                    do {
                        _ = try execute(stage, stdin: input, host: host, out: &piped)
                    } catch is Exit {
                        // `exit` inside a pipeline stage ends that stage only.
                    }
                    out.stderr.append(piped.stderr)
                    input = piped.stdout
                }
            }
            return status
        case .ifThen(let condition, let body, let otherwise):
            if try execute(condition, stdin: stdin, host: host, out: &out) == 0 {
                return try execute(body, stdin: stdin, host: host, out: &out)
            }
            if let otherwise { return try execute(otherwise, stdin: stdin, host: host, out: &out) }
            return 0
        case .simple(let words, let redirects):
            var local = Output()
            var exit: Exit?
            var status: Int32
            do {
                status = try builtin(words, stdin: stdin, host: host, out: &local)
            } catch let e as Exit {
                exit = e
                status = e.status
            }
            for r in redirects {
                if r.fd == 2 && r.target == "&1" {
                    local.stdout.append(local.stderr)
                    local.stderr = Data()
                } else if r.fd == 1 && r.target == "&2" {
                    local.stderr.append(local.stdout)
                    local.stdout = Data()
                } else if r.fd == 1 || r.fd == 2 {
                    let data = r.fd == 1 ? local.stdout : local.stderr
                    if r.fd == 1 { local.stdout = Data() } else { local.stderr = Data() }
                    if r.target != "/dev/null" {
                        let before = r.append ? (host.file(r.target)?.data ?? Data()) : Data()
                        host.setFile(r.target, data: before + data, mode: host.file(r.target)?.mode ?? 0o644)
                    }
                }
            }
            out.stdout.append(local.stdout)
            out.stderr.append(local.stderr)
            if let exit { throw exit }
            return status
        }
    }

    /// Drops a leading `--` (end of options).
    static func operands(_ args: ArraySlice<String>) -> [String] {
        var a = Array(args)
        if a.first == "--" { a.removeFirst() }
        return a
    }

    static func builtin(_ words: [String], stdin: Data, host: FakeHost, out: inout Output) throws -> Int32 {
        let name = words[0]
        let args = words.dropFirst()
        switch name {
        case "true", ":":
            return 0
        case "false":
            return 1
        case "exit":
            throw Exit(status: args.first.flatMap { Int32($0) } ?? 0)
        case "echo":
            out.out(args.joined(separator: " ") + "\n")
            return 0
        case "printf":
            guard let format = args.first else { return 1 }
            if format == "%s" {
                out.out(args.dropFirst().joined())
            } else if format == "%s\\n" {
                out.out(args.dropFirst().map { $0 + "\n" }.joined())
            } else {
                out.out(format.replacingOccurrences(of: "\\n", with: "\n"))
            }
            return 0
        case "cat":
            let files = operands(args)
            if files.isEmpty {
                out.stdout.append(stdin)
                return 0
            }
            var status: Int32 = 0
            for f in files {
                if let file = host.file(f) {
                    out.stdout.append(file.data)
                } else {
                    out.err("cat: \(f): No such file or directory\n")
                    status = 1
                }
            }
            return status
        case "test", "[":
            var a = Array(args)
            if name == "[" {
                guard a.last == "]" else { out.err("[: missing ]\n"); return 2 }
                a.removeLast()
            }
            var negate = false
            if a.first == "!" { negate = true; a.removeFirst() }
            let result: Bool
            switch (a.count, a.first) {
            case (2, "-e"?): result = host.file(a[1]) != nil || host.isDirectory(a[1])
            case (2, "-f"?): result = host.file(a[1]) != nil
            case (2, "-s"?): result = (host.file(a[1])?.data.count ?? 0) > 0
            case (2, "-d"?): result = host.isDirectory(a[1])
            case (2, "-n"?): result = !a[1].isEmpty
            case (2, "-z"?): result = a[1].isEmpty
            case (3, _) where a[1] == "=": result = a[0] == a[2]
            case (3, _) where a[1] == "!=": result = a[0] != a[2]
            case (1, _): result = !a[0].isEmpty
            default:
                out.err("test: unsupported expression: \(a.joined(separator: " "))\n")
                return 2
            }
            return (result != negate) ? 0 : 1
        case "umask":
            // New files get 0644 here, as under umask 022: the only mask the built-in actions set.
            return 0
        case "mv":
            let a = operands(args.filter { $0 != "-f" }[...])
            guard a.count == 2, let file = host.file(a[0]) else {
                out.err("mv: cannot stat '\(a.first ?? "")': No such file or directory\n")
                return 1
            }
            host.setFile(a[1], data: file.data, mode: file.mode)
            host.removeFile(a[0])
            return 0
        case "mkdir":
            for d in operands(args.filter { $0 != "-p" }[...]) { host.makeDirectory(d) }
            return 0
        case "rm":
            for f in operands(args.filter { !$0.hasPrefix("-") || $0 == "--" }[...]) { host.removeFile(f) }
            return 0
        case "chmod":
            let a = operands(args)
            guard a.count >= 2, let mode = Int(a[0], radix: 8) else { out.err("chmod: unsupported arguments\n"); return 1 }
            var status: Int32 = 0
            for f in a.dropFirst() {
                guard let file = host.file(f) else {
                    out.err("chmod: cannot access '\(f)': No such file or directory\n")
                    status = 1
                    continue
                }
                host.setFile(f, data: file.data, mode: mode)
            }
            return status
        case "sha256sum" where args.contains("-c"):
            // `sha256sum -c [--status]`: "DIGEST  PATH" lines on stdin (a leading backslash: escaped path).
            var status: Int32 = 0
            for line in String(decoding: stdin, as: UTF8.self).split(separator: "\n") {
                var text = String(line)
                let escaped = text.hasPrefix("\\")
                if escaped { text.removeFirst() }
                guard let gap = text.range(of: "  ") else { status = 1; continue }
                var path = String(text[gap.upperBound...])
                if escaped {
                    path = path.replacingOccurrences(of: "\\n", with: "\n").replacingOccurrences(of: "\\\\", with: "\\")
                }
                let ok = host.file(path).map { sha256Hex($0.data) == text[..<gap.lowerBound] } ?? false
                if !ok { status = 1 }
                if !args.contains("--status") { out.out("\(path): \(ok ? "OK" : "FAILED")\n") }
            }
            return status
        case "sha256sum":
            let files = operands(args)
            if files.isEmpty {
                out.out(sha256Hex(stdin) + "  -\n")
                return 0
            }
            var status: Int32 = 0
            for f in files {
                if let file = host.file(f) {
                    out.out(sha256Hex(file.data) + "  \(f)\n")
                } else {
                    out.err("sha256sum: \(f): No such file or directory\n")
                    status = 1
                }
            }
            return status
        case "stat":
            var a = Array(args)
            guard a.count >= 3, a[0] == "-c", a[1] == "%a" else { out.err("stat: unsupported arguments\n"); return 1 }
            a.removeFirst(2)
            var status: Int32 = 0
            for f in operands(a[...]) {
                if let file = host.file(f) {
                    out.out(String(file.mode, radix: 8) + "\n")
                } else {
                    out.err("stat: cannot statx '\(f)': No such file or directory\n")
                    status = 1
                }
            }
            return status
        case "cut":
            var delimiter: Character = "\t"
            var field = 1
            var a = Array(args)
            while let flag = a.first {
                if flag == "-d", a.count > 1 { delimiter = a[1].first ?? "\t"; a.removeFirst(2) }
                else if flag.hasPrefix("-d"), flag.count > 2 { delimiter = flag.dropFirst(2).first!; a.removeFirst() }
                else if flag.hasPrefix("-f"), let n = Int(flag.dropFirst(2)) { field = n; a.removeFirst() }
                else { break }
            }
            let text = String(decoding: stdin, as: UTF8.self)
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if lines.last == "" { lines.removeLast() }
            for line in lines {
                let parts = line.split(separator: delimiter, omittingEmptySubsequences: false)
                out.out((field - 1 < parts.count ? String(parts[field - 1]) : line) + "\n")
            }
            return 0
        case "sysctl":
            return sysctl(Array(args), host: host, out: &out)
        default:
            let r = try host.unknownCommand(words, stdin)
            out.stdout.append(r.stdout)
            out.stderr.append(r.stderr)
            return r.exitCode ?? 1
        }
    }

    /// `sysctl -n [--] KEY…`, `sysctl [-q] -w KEY=VALUE…`, `sysctl KEY…`.
    static func sysctl(_ args: [String], host: FakeHost, out: inout Output) -> Int32 {
        var quiet = false, write = false, valuesOnly = false
        var rest: [String] = []
        var options = true
        for a in args {
            if options && a == "--" { options = false; continue }
            if options && a.hasPrefix("-") && a.count > 1 {
                for flag in a.dropFirst() {
                    switch flag {
                    case "q": quiet = true
                    case "w": write = true
                    case "n": valuesOnly = true
                    default:
                        out.err("sysctl: unsupported option -\(flag)\n")
                        return 2
                    }
                }
                continue
            }
            rest.append(a)
        }
        var status: Int32 = 0
        for item in rest {
            if write {
                guard let eq = item.firstIndex(of: "=") else {
                    out.err("sysctl: \"\(item)\" must be of the form name=value\n")
                    status = 255
                    continue
                }
                let key = String(item[..<eq]), value = String(item[item.index(after: eq)...])
                guard host.sysctl(key) != nil else {
                    out.err("sysctl: cannot stat /proc/sys/\(key.replacingOccurrences(of: ".", with: "/")): No such file or directory\n")
                    status = 255
                    continue
                }
                host.writeSysctl(key, value)
                if !quiet { out.out("\(key) = \(value)\n") }
            } else {
                guard let value = host.sysctl(item) else {
                    out.err("sysctl: cannot stat /proc/sys/\(item.replacingOccurrences(of: ".", with: "/")): No such file or directory\n")
                    status = 255
                    continue
                }
                out.out(valuesOnly ? value + "\n" : "\(item) = \(value)\n")
            }
        }
        return status
    }
}
