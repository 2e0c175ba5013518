import Foundation

/// Where each key and table header of a (valid) TOML document sits, so validation errors can name a line.
///
/// TOMLKit reports positions for syntax errors only, so this scans the text once. Paths look like
/// `ssh.port`, `hosts[2].address`, `hosts[2]` (the header of the third `[[hosts]]`). A path that is not
/// found falls back to its parent, so a key written inside an inline table points at that table's line.
struct InventorySourceMap {
    struct Position: Equatable {
        var line: Int
        var column: Int
    }

    private(set) var positions: [String: Position] = [:]

    init(text: String) {
        var scanner = Scanner(scalars: Array(text.unicodeScalars))
        scanner.run()
        positions = scanner.positions
    }

    func locate(_ path: String) -> Position? {
        var current = Substring(path)
        while !current.isEmpty {
            if let found = positions[String(current)] { return found }
            if current.last == "]", let open = current.lastIndex(of: "[") {
                current = current[..<open]
            } else if let dot = current.lastIndex(of: ".") {
                current = current[..<dot]
            } else {
                return nil
            }
        }
        return nil
    }

    private struct Scanner {
        let scalars: [Unicode.Scalar]
        var index = 0
        var line = 1
        var column = 1
        var table = ""
        var arrayCounts: [String: Int] = [:]
        var positions: [String: Position] = [:]

        init(scalars: [Unicode.Scalar]) {
            self.scalars = scalars
        }

        var current: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }

        func peek(_ offset: Int) -> Unicode.Scalar? {
            let at = index + offset
            return at < scalars.count ? scalars[at] : nil
        }

        mutating func advance() {
            guard index < scalars.count else { return }
            if scalars[index] == "\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
            index += 1
        }

        mutating func skipBlanks() {
            while let scalar = current, scalar == " " || scalar == "\t" { advance() }
        }

        mutating func skipToLineEnd() {
            while let scalar = current, scalar != "\n" { advance() }
            advance()
        }

        mutating func run() {
            while index < scalars.count {
                skipBlanks()
                guard let scalar = current else { return }
                switch scalar {
                case "\n", "\r":
                    advance()
                case "#":
                    skipToLineEnd()
                case "[":
                    readHeader()
                default:
                    readKeyValue()
                }
            }
        }

        mutating func readHeader() {
            let start = Position(line: line, column: column)
            advance()
            let isArray = current == "["
            if isArray { advance() }
            let name = readKeyPath()
            if isArray {
                let next = (arrayCounts[name] ?? -1) + 1
                arrayCounts[name] = next
                if positions[name] == nil { positions[name] = start }
                table = "\(name)[\(next)]"
            } else {
                table = name
            }
            if positions[table] == nil { positions[table] = start }
            skipToLineEnd()
        }

        mutating func readKeyValue() {
            let start = Position(line: line, column: column)
            let key = readKeyPath()
            if key.isEmpty {
                skipToLineEnd()
                return
            }
            let path = table.isEmpty ? key : "\(table).\(key)"
            if positions[path] == nil { positions[path] = start }
            skipBlanks()
            if current == "=" { advance() }
            skipValue()
        }

        /// Reads `a.b."c d"` up to `=` or `]`, returning the segments joined with dots.
        mutating func readKeyPath() -> String {
            var segments: [String] = []
            while current != nil {
                skipBlanks()
                guard let next = current else { break }
                if next == "=" || next == "]" || next == "\n" || next == "#" { break }
                if next == "." {
                    advance()
                    continue
                }
                if next == "\"" || next == "'" {
                    segments.append(readQuotedKey(quote: next))
                    continue
                }
                var segment = ""
                while let bare = current, bare.properties.isAlphabetic || ("0"..."9").contains(bare) || bare == "_" || bare == "-" {
                    segment.unicodeScalars.append(bare)
                    advance()
                }
                if segment.isEmpty {
                    advance()
                    continue
                }
                segments.append(segment)
            }
            return segments.joined(separator: ".")
        }

        mutating func readQuotedKey(quote: Unicode.Scalar) -> String {
            var text = ""
            advance()
            while let scalar = current, scalar != quote, scalar != "\n" {
                if quote == "\"", scalar == "\\" {
                    advance()
                    if let escaped = current { text.unicodeScalars.append(escaped) }
                    advance()
                    continue
                }
                text.unicodeScalars.append(scalar)
                advance()
            }
            if current == quote { advance() }
            return text
        }

        /// Skips one value, including arrays and inline tables spread over several lines, and the line's comment.
        mutating func skipValue() {
            var depth = 0
            while let scalar = current {
                switch scalar {
                case "\"", "'":
                    skipString(quote: scalar)
                case "[", "{":
                    depth += 1
                    advance()
                case "]", "}":
                    depth -= 1
                    advance()
                case "#":
                    while let inComment = current, inComment != "\n" { advance() }
                case "\n":
                    advance()
                    if depth <= 0 { return }
                default:
                    advance()
                }
            }
        }

        mutating func skipString(quote: Unicode.Scalar) {
            let escapes = quote == "\""
            if peek(1) == quote, peek(2) == quote {
                advance(); advance(); advance()
                while let scalar = current {
                    if escapes, scalar == "\\" {
                        advance(); advance()
                        continue
                    }
                    if scalar == quote, peek(1) == quote, peek(2) == quote {
                        advance(); advance(); advance()
                        // Up to two more quotes may close the string as part of its content.
                        var extra = 0
                        while extra < 2, current == quote {
                            advance()
                            extra += 1
                        }
                        return
                    }
                    advance()
                }
                return
            }
            advance()
            while let scalar = current, scalar != "\n" {
                if escapes, scalar == "\\" {
                    advance(); advance()
                    continue
                }
                advance()
                if scalar == quote { return }
            }
        }
    }
}
