import Foundation

/// The candidate closest to `word` (case-insensitive), when it is within two edits.
public func closest(to word: String, among candidates: [String]) -> String? {
    var best: (candidate: String, distance: Int)?
    for candidate in candidates {
        let distance = editDistance(word.lowercased(), candidate.lowercased())
        if distance <= 2, distance < (best?.distance ?? Int.max) { best = (candidate, distance) }
    }
    return best?.candidate
}

/// ` (did you mean "x"?)` when a candidate is within two edits, else the empty string.
public func suggestion(for word: String, among candidates: [String]) -> String {
    closest(to: word, among: candidates).map { " (did you mean \"\($0)\"?)" } ?? ""
}

/// Levenshtein distance.
public func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var row = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        row[0] = i
        for j in 1...b.count {
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &row)
    }
    return previous[b.count]
}
