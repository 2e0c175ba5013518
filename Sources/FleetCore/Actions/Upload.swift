import Crypto
import Foundation

/// `upload`: puts a file on the host with a mode. The content comes from a local file (`src`,
/// relative to the playbook), from `content` (a template), or from a value another step produced
/// (`secret`, e.g. a join secret — it travels over stdin, never on a command line). Nothing is written
/// when the remote file already has that content and mode.
///
///     action = "upload"
///     secret = "join"
///     dest = "/etc/myapp/join-secret"
///     mode = "0600"
public struct UploadAction: Action {
    public enum Source: Sendable {
        case file(String)
        case content(Template)
        case secret(String)
    }

    public var source: Source
    public var dest: Template
    public var mode: Int

    public init(_ p: StepParams) throws {
        let src = try p.string("src"), content = try p.template("content"), secret = try p.string("secret")
        switch (src, content, secret) {
        case let (s?, nil, nil):
            let base = (p.file as NSString).deletingLastPathComponent
            let path = s.hasPrefix("/") ? s : (base as NSString).appendingPathComponent(s)
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw p.error("src", "no readable file at \(path)")
            }
            source = .file(path)
        case let (nil, c?, nil): source = .content(c)
        case let (nil, nil, name?): source = .secret(name)
        default: throw p.error(nil, "give exactly one of src, content or secret")
        }
        dest = try p.requiredTemplate("dest")
        try RemotePath.checkAtLoad(dest, file: true, p, "dest")
        mode = try UploadAction.parseMode(p)
    }

    static func parseMode(_ p: StepParams) throws -> Int {
        switch p.values["mode"] {
        case nil:
            _ = try p.string("mode")  // marks "mode" as known, so a typo of it gets a suggestion
            return 0o644
        case .int?:
            // Written as a TOML integer: 644 means 0644, as in chmod.
            let i = try p.int("mode") ?? 0
            guard let m = Int(String(i), radix: 8), (0...0o7777).contains(m) else { throw p.error("mode", "\(i) is not an octal mode") }
            return m
        default:
            let s = try p.requiredString("mode")
            guard let m = Int(s, radix: 8), (0...0o7777).contains(m) else { throw p.error("mode", "\"\(s)\" is not an octal mode like \"0644\"") }
            return m
        }
    }

    /// The content by hash (a local file's, or the rendered template's), or the name of the secret.
    public struct Inputs: Encodable {
        public var fileSHA256: String?
        public var contentSHA256: String?
        public var secret: String?
        public var dest: String
        public var mode: Int
    }

    public func inputs(host: Host, inventory: Inventory) throws -> Inputs {
        let vars = TemplateVariables(host: host, inventory: inventory)
        var inputs = Inputs(dest: dest.render(vars, .plain), mode: mode)
        switch source {
        case .file(let path): inputs.fileSHA256 = try LocalFile.sha256(of: path)
        case .content(let t): inputs.contentSHA256 = sha256Hex(Data(t.render(vars, .plain).utf8))
        case .secret(let name): inputs.secret = name
        }
        return inputs
    }

    public func describe(_ vars: TemplateVariables) -> [String] {
        let what: String
        switch source {
        case .file(let path):
            let digest = (try? LocalFile.sha256(of: path)) ?? "missing"
            what = "\(path) (sha256 \(digest.prefix(16)))"
        case .content(let t): what = "content sha256 \(sha256Hex(Data(t.render(vars, .plain).utf8)).prefix(16))"
        case .secret(let name): what = "<secret \(name)>"
        }
        return ["upload \(what) to \(dest.render(vars, .plain)) mode \(String(mode, radix: 8))"]
    }

    func data(_ ctx: TaskContext) throws -> Data {
        switch source {
        case .file(let path):
            guard let d = try? LocalFile.contents(of: path) else { throw TaskFailure("cannot read \(path)") }
            return d
        case .content(let t): return Data(t.render(ctx.vars, .plain).utf8)
        case .secret(let name): return Data(try ctx.value(name).reveal().utf8)
        }
    }

    public func run(_ ctx: TaskContext) throws -> ActionOutcome {
        let bytes = try data(ctx)
        let path = dest.render(ctx.vars, .plain)
        try RemotePath.check(path, file: true, host: ctx.host.name)
        guard try ctx.uploadIfChanged(bytes, to: path, mode: mode) else {
            return .ok("\(path) already has this content and mode \(String(mode, radix: 8))")
        }
        return .changed("wrote \(path) (\(bytes.count) bytes, mode \(String(mode, radix: 8)))")
    }
}

/// `fetch_secret`: reads a remote file into a named value other hosts' steps can `need`.
/// The value is masked in every output and never stored: a rerun reads it again.
///
///     action = "fetch_secret"
///     path = "/var/lib/myapp/join-secret"
///     secret = "join"
public struct FetchSecretAction: Action {
    public var path: Template
    public var name: String

    public init(_ p: StepParams) throws {
        path = try p.requiredTemplate("path")
        try RemotePath.checkAtLoad(path, file: false, p, "path")
        name = try p.requiredString("secret")
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
            throw p.error("secret", "must be a simple name like \"join\"")
        }
    }

    public var produces: [String] { [name] }

    public struct Inputs: Encodable {
        public var path: String
        public var secret: String
    }

    public func inputs(host: Host, inventory: Inventory) -> Inputs {
        Inputs(path: path.render(TemplateVariables(host: host, inventory: inventory), .plain), secret: name)
    }

    public func describe(_ vars: TemplateVariables) -> [String] {
        ["read \(path.render(vars, .plain)) into <secret \(name)>"]
    }

    public func run(_ ctx: TaskContext) throws -> ActionOutcome {
        let p = path.render(ctx.vars, .plain)
        guard let data = try ctx.read(p) else {
            throw TaskFailure("\(p) does not exist on \(ctx.host.name)")
        }
        let value = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !value.isEmpty else { throw TaskFailure("\(p) is empty on \(ctx.host.name)") }
        ctx.produce(Secret(name: name, value: value))
        return .ok("read \(name) from \(p)")
    }
}

public func sha256Hex(_ data: Data) -> String {
    // By table: String(format:) per byte was a tenth of a 100-host run's CPU (a digest per host and step).
    let digits = Array("0123456789abcdef".utf8)
    var hex = [UInt8]()
    hex.reserveCapacity(64)
    for byte in SHA256.hash(data: data) {
        hex.append(digits[Int(byte >> 4)])
        hex.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: hex, as: UTF8.self)
}
