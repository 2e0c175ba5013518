import FleetCore
import Foundation

/// Reads `[preflight]`.
enum PreflightSection {
    static let keys = ["probe", "check_internet"]

    static let section = InventorySection(name: "preflight", keys: keys) { reader, table in read(&reader, table) }

    static func read(_ r: inout InventoryReader, _ t: InventoryTable) {
        let before = r.errorCount
        var config = PreflightConfig()
        if case .present(let text) = r.string(t, "probe") {
            if let address = IPv6Address(text) {
                config.probe = address
            } else {
                r.fail(t, "probe", "\(InventorySyntax.tomlQuoted(text)) is not an IPv6 address\(ipv4Hint(text))")
            }
        }
        if case .present(let flag) = r.boolean(t, "check_internet") { config.checkInternet = flag }
        if r.errorCount == before { r.sections[PreflightConfig.self] = config }
    }
}
